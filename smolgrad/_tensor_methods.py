"""`TensorMethods`, the base class of `Tensor`: empty at run time.

The op modules attach Tensor's methods at import time with `register` (smolgrad/engine.py),
so a type checker reading engine.py sees none of them. It reads `_tensor_methods.pyi`
instead of this file: a stub generated from the op registry that lists every attached
method with its signature (regenerate it with `.venv/bin/python tools/gen_stubs.py`).
"""


class TensorMethods:
    __slots__ = ()  # adds no per-instance storage to Tensor (which has __slots__ of its own)
