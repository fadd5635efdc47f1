"""Choice of the torch device of a rank (CUDA when present, else CPU)."""

from __future__ import annotations

import torch


def pick_device(local_rank: int, prefer: str = "auto") -> torch.device:
    """``cuda:(local_rank mod n_gpu)`` when CUDA is present (and not refused), else CPU.

    Args:
        local_rank: rank among the ranks of this node.
        prefer: "auto", "cpu" or "cuda" (the latter fails clearly without CUDA).
    """
    from hpcspin.errors import HpcspinError

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if prefer == "cpu" or (prefer == "auto" and n == 0):
        return torch.device("cpu")
    if n == 0:
        raise HpcspinError("[parallel] device = 'cuda': CUDA is not available on this node")
    return torch.device(f"cuda:{local_rank % n}")
