"""The op library, one module per family. Importing it attaches the Tensor methods."""

from . import convert, creation, elementwise, linalg, movement, reduce, views  # noqa: F401
from . import printing  # noqa: F401,E402  (repr/str/format of Tensor, as PyTorch prints)
