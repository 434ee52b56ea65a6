"""`torch.backends`: the switches PyTorch programs flip for its GPU libraries.

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    if torch.backends.mps.is_available(): ...

smolgrad keeps every flag with PyTorch's name and default, so such programs run, and reads
back what was set; the flags change no computation here: NumPy and MLX compute float32 in
full float32, smolgrad's CuPy backend does not use cuDNN, and TF32 is not switched on.
`mps` is never available: smolgrad's Apple-silicon device is "mlx".

(smolgrad's array libraries, which an earlier version kept here, are in smolgrad/arrays.)
"""

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
