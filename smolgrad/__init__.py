"""smolgrad: a small, readable tensor autograd engine with a PyTorch-shaped API.

    import smolgrad as sg
    x = sg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # tensor([2., 4., 6.])

Read `smolgrad/engine.py` first: it is the whole autograd idea on a few pages.
"""

from . import dtypes
from .arrays import device, get_default_device, is_available, set_default_device
from .dtypes import (
    bfloat16, float16, float32, float64, get_default_dtype, int32, int64, promote_types,
    set_default_dtype,
)
from .dtypes import bool_ as bool  # noqa: A001 - torch.bool
from .dtypes import dtype
from .engine import (
    Tensor, enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled,
)
from . import ops  # noqa: E402,I001  (attaches the Tensor methods)
from . import registry  # noqa: E402

# The top-level functions (sg.exp, sg.zeros, sg.cat, sg.FloatTensor, ...): everything
# registered with `register(..., function=...)` in smolgrad/ops/, taken from the registry
# rather than listed here.
globals().update(registry.exports())

from . import autograd  # noqa: E402

half = float16
double = float64
long = int64
float = float32  # noqa: A001
int = int32  # noqa: A001

# The layers above the ops: reachable as attributes after `import smolgrad as sg`.
from . import nn, optim, utils  # noqa: E402
from .io import load, save  # noqa: E402
from .random import (  # noqa: E402
    Generator, default_generator, get_rng_state, initial_seed, seed, set_rng_state,
)
from . import cuda, viz  # noqa: E402

# ---- PyTorch compatibility: torch.X namespaces and top-level names (docs/pytorch.md) ----------
from . import accelerator, amp, backends, distributed, onnx, serialization  # noqa: E402
from .nn import modules as _nn_modules, parallel as _nn_parallel  # noqa: E402  (torch.nn.*)
from .amp import autocast  # noqa: E402
from .compat import (  # noqa: E402
    Size, are_deterministic_algorithms_enabled, compile, finfo,
    get_float32_matmul_precision, get_num_interop_threads, get_num_threads, iinfo,
    is_deterministic_algorithms_warn_only_enabled, is_tensor, set_float32_matmul_precision,
    set_num_interop_threads, set_num_threads, use_deterministic_algorithms,
)
from .torch_alias import install_as_torch  # noqa: E402

del _nn_modules, _nn_parallel


def __getattr__(name: str):
    """`__version__` (looked up on first use); for `torch.fft` and other names smolgrad
    lacks, an AttributeError that says so."""
    from .compat import installed_version, missing_attribute

    if name == "__version__":
        return installed_version()
    raise missing_attribute(__name__, name)
# ---- end of PyTorch compatibility block -------------------------------------------------------

# Everything above is exported, as it was before there was an __all__ (`from smolgrad import
# *` takes every public name); smolgrad/__init__.pyi, generated from this list, tells IDEs.
__all__ = sorted(name for name in globals() if not name.startswith("_"))
