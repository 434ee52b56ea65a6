"""The op library, one module per family. Importing it attaches the Tensor methods."""

from . import (  # noqa: F401
    construction, convert, creation, elementwise, linalg, movement, printing, reduce, sampling,
    tensor_api, views,
)
