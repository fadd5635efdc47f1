"""Device mapping and thread count of a rank, with mocked CUDA device counts."""

import pytest
import torch

from hpcspin.errors import HpcspinError
from hpcspin.ml import ModelSpec, build_model
from hpcspin.ml.device import cast_model, pick_device, rank_threads, set_rank_threads


def fake_cuda(monkeypatch, n):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


@pytest.mark.parametrize("n_gpu", [1, 2, 4])
def test_ranks_share_gpus_round_robin(monkeypatch, n_gpu):
    fake_cuda(monkeypatch, n_gpu)
    got = [str(pick_device(r)) for r in range(8)]
    assert got == [f"cuda:{r % n_gpu}" for r in range(8)]
    assert all(str(pick_device(r, "cuda")) == f"cuda:{r % n_gpu}" for r in range(8))
    assert str(pick_device(3, "cpu")) == "cpu"


def test_no_gpu(monkeypatch):
    fake_cuda(monkeypatch, 0)
    assert str(pick_device(5)) == "cpu"
    with pytest.raises(HpcspinError, match="device = 'cuda'"):
        pick_device(0, "cuda")


def test_rank_threads_follow_omp_num_threads():
    assert rank_threads({}) == 1
    assert rank_threads({"OMP_NUM_THREADS": "3"}) == 3
    assert rank_threads({"OMP_NUM_THREADS": "0"}) == 1
    assert rank_threads({"OMP_NUM_THREADS": "many"}) == 1
    before = torch.get_num_threads()
    try:
        assert set_rank_threads({"OMP_NUM_THREADS": "2"}) == 2 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_ml_provider_sets_threads_and_precision(monkeypatch):
    from hpcspin.dynamics.forces import MLForce

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        torch.set_num_threads(2)
        model = build_model(ModelSpec(head="E", radius=2, hidden=(4,), globals=()), seed=0)
        p = MLForce(model, {}, "cpu", dtype="float32")
        assert torch.get_num_threads() == 1
        assert p.model.dtype == torch.float32
    finally:
        torch.set_num_threads(before)
    m = cast_model(build_model(ModelSpec(head="E", radius=2, hidden=(4,)), seed=0))
    assert m.dtype == torch.float64
