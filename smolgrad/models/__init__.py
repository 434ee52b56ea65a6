"""Ready-made models written with smolgrad.nn.

    from smolgrad.models.gpt2 import GPT2, GPT2Config
    model = GPT2.from_pretrained("path/to/gpt2")   # a Hugging Face GPT-2 folder, no network
"""

from .gpt2 import GPT2, GPT2Config, KVCache

__all__ = ["GPT2", "GPT2Config", "KVCache"]
