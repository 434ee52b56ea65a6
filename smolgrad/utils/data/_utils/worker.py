"""Worker-process information (`torch.utils.data._utils.worker`)."""

from __future__ import annotations


def get_worker_info():
    """None: smolgrad's DataLoader has no worker processes (PyTorch returns None in the
    main process too)."""
    return None
