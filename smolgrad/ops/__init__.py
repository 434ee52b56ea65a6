"""The op library, one module per family. Importing it attaches the Tensor methods."""

from . import convert, creation, elementwise, linalg, movement, reduce  # noqa: F401
