"""Torch device and thread count of a rank (CUDA when present, else CPU)."""

from __future__ import annotations

import os

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


def rank_threads(env: dict | None = None) -> int:
    """Torch threads of one rank: ``OMP_NUM_THREADS`` when set, else 1.

    One thread per rank is what the command line has always used (it sets
    ``OMP_NUM_THREADS=1`` unless the job does); every other entry point (the
    Python API, benchmarks, tests) gets the same rule through the ML force
    provider, instead of torch's default of one thread per core, which on a
    shared or multi-rank node oversubscribes the cores.
    """
    env = os.environ if env is None else env
    try:
        return max(1, int(env.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


def set_rank_threads(env: dict | None = None) -> int:
    """Apply :func:`rank_threads` to torch; returns the thread count."""
    n = rank_threads(env)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def cast_model(model, device=None, dtype: str | None = None):
    """``model`` moved to ``device`` and cast to ``dtype`` ("float32"/"float64"); None keeps."""
    if device is not None:
        model = model.to(device)
    if dtype is not None:
        model = model.to(getattr(torch, dtype))
    return model
