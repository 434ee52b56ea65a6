"""The op library, one module per family. Importing it attaches the Tensor methods."""

from . import (  # noqa: F401
    convert, creation, elementwise, linalg, movement, printing, reduce, sampling, views,
)
