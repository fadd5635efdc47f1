"""Trajectory export, re-read by independent readers: VTK's VTKHDF reader (ParaView's),
the ``ovf`` package (Spirit's OVF library) and ASE's extxyz reader."""

from __future__ import annotations

import numpy as np
import pytest

import hpcspin
from hpcspin.cli import main
from hpcspin.errors import HpcspinError
from hpcspin.io.export import frame_indices, positions_of, read_frames
from hpcspin.io.trajectory import read_trajectory
from hpcspin.lattice import make_lattice

LATTICES = {
    "chain": {"kind": "chain", "length": 24},
    "square": {"kind": "square", "length": 10, "width": 3, "periodic": True},
    "triangular": {"kind": "triangular", "length": 9, "width": 4},
}


@pytest.fixture(scope="module", params=list(LATTICES))
def traj(request, tmp_path_factory):
    """A short classical run with a tilted, noisy wall: (path, lattice kind, data)."""
    out = tmp_path_factory.mktemp(request.param)
    deck = {
        "run": {"task": "dynamics"},
        "lattice": LATTICES[request.param],
        "spins": {"noise": 0.2, "B": [0.0, 0.0, 0.01], "wall_width": 1.5},
        "dynamics": {"forces": "none", "relax": False, "t_end": 2.0, "dt": 0.1},
        "output": {"dir": str(out), "every": 5, "plots": False},
    }
    r = hpcspin.run(deck, log_level="WARNING")
    return r.files["trajectory"], request.param, read_trajectory(r.files["trajectory"])


def test_positions_are_the_lattice_positions(traj):
    path, kind, data = traj
    lat = make_lattice(**LATTICES[kind])
    np.testing.assert_allclose(data["positions"][:, :2], lat.positions, atol=1e-15)
    np.testing.assert_allclose(positions_of(kind, lat.length, lat.width)[:, :2], lat.positions)
    assert np.all(data["positions"][:, 2] == 0)


def test_vtkhdf_sidecar_read_by_vtk(traj):
    vtk_hdf = pytest.importorskip("vtkmodules.vtkIOHDF")
    from vtkmodules.util.numpy_support import vtk_to_numpy

    path, kind, data = traj
    reader = vtk_hdf.vtkHDFReader()
    reader.SetFileName(path[: -len(".h5")] + ".vtkhdf")
    reader.UpdateInformation()
    n = len(data["time"])
    assert reader.GetNumberOfSteps() == n
    for k in (0, n - 1):
        reader.SetStep(k)
        reader.Update()
        grid = reader.GetOutputDataObject(0)
        assert reader.GetTimeValue() == data["time"][k]
        np.testing.assert_array_equal(vtk_to_numpy(grid.GetPoints().GetData()), data["positions"])
        spins = vtk_to_numpy(grid.GetPointData().GetArray("spins"))
        np.testing.assert_array_equal(spins, data["spins"][k])
        assert grid.GetNumberOfCells() == len(data["positions"])


def test_vtkhdf_export_of_a_trajectory_without_positions(traj, tmp_path):
    """Older trajectories get positions (from the lattice shape) and a sidecar."""
    vtk_hdf = pytest.importorskip("vtkmodules.vtkIOHDF")
    import shutil

    import h5py

    path, kind, data = traj
    old = tmp_path / "old.h5"
    shutil.copy(path, old)
    with h5py.File(old, "r+") as f:
        del f["positions"]
    assert main(["export", str(old), "--format", "vtkhdf"]) == 0
    reader = vtk_hdf.vtkHDFReader()
    reader.SetFileName(str(tmp_path / "old.vtkhdf"))
    reader.SetStep(1)
    reader.Update()
    grid = reader.GetOutputDataObject(0)
    from vtkmodules.util.numpy_support import vtk_to_numpy

    np.testing.assert_allclose(vtk_to_numpy(grid.GetPoints().GetData()), data["positions"])
    spins = vtk_to_numpy(grid.GetPointData().GetArray("spins"))
    np.testing.assert_array_equal(spins, data["spins"][1])


@pytest.mark.parametrize("binary", [0, 4, 8])
def test_ovf_read_by_the_ovf_library(traj, tmp_path, binary):
    ovf = pytest.importorskip("ovf.ovf")
    path, kind, data = traj
    argv = ["export", path, "--format", "ovf", "--frames", "0,-1", "--out", str(tmp_path / "s")]
    if kind == "triangular":
        assert main([*argv, "--binary", str(binary)]) == 2  # refused: not rectangular
        return
    assert main([*argv, "--binary", str(binary)]) == 0
    lat = make_lattice(**LATTICES[kind])
    n_frames = len(data["time"])
    for i in (0, n_frames - 1):
        seg = ovf.ovf_segment()
        with ovf.ovf_file(str(tmp_path / f"s_{i:06d}.ovf")) as f:
            assert f.found and f.is_ovf and f.n_segments == 1
            assert f.read_segment_header(0, seg) == ovf.OK
            assert list(seg.n_cells) == [lat.length, lat.width, 1] and seg.valuedim == 3
            got = np.zeros((seg.N, 3), dtype=np.float64 if binary != 4 else np.float32)
            assert f.read_segment_data(0, seg, got) == ovf.OK
        want = data["spins"][i].reshape(lat.length, lat.width, 3).transpose(1, 0, 2)
        tol = 1e-7 if binary == 4 else 0.0
        np.testing.assert_allclose(got, want.reshape(-1, 3), rtol=0, atol=tol)


def test_extxyz_read_by_ase(traj, tmp_path):
    ase_io = pytest.importorskip("ase.io")
    path, kind, data = traj
    out = tmp_path / "t.extxyz"
    assert main(["export", path, "--format", "extxyz", "--frames", "::2", "--out", str(out)]) == 0
    frames = ase_io.read(str(out), index=":", format="extxyz")
    picked = list(range(len(data["time"])))[::2]
    assert len(frames) == len(picked)
    for atoms, i in zip(frames, picked, strict=True):
        np.testing.assert_allclose(atoms.positions, data["positions"], atol=1e-14)
        np.testing.assert_array_equal(atoms.arrays["spin"], data["spins"][i])
        assert atoms.info["time"] == data["time"][i] and atoms.info["step"] == data["step"][i]
    assert list(frames[0].pbc) == [False, kind == "square", False]


def test_frame_selection():
    assert frame_indices("all", 4) == [0, 1, 2, 3]
    assert frame_indices("last", 4) == [3] and frame_indices("first", 4) == [0]
    assert frame_indices("1:4:2", 5) == [1, 3] and frame_indices("-1,0", 3) == [2, 0]
    for bad in ("7", "a:b", "1:2:3:4", "x"):
        with pytest.raises(HpcspinError, match="--frames"):
            frame_indices(bad, 5)


def test_export_errors_exit_2(traj, tmp_path, capsys):
    path, _, _ = traj
    assert main(["export", str(tmp_path / "missing.h5"), "--format", "extxyz"]) == 2
    assert main(["export", path, "--format", "extxyz", "--frames", "99"]) == 2
    err = capsys.readouterr().err
    assert "missing.h5" in err and "--frames '99'" in err and "Traceback" not in err


def test_read_frames_keeps_the_requested_order(traj):
    path, _, data = traj
    got = read_frames(path, "2,0")
    np.testing.assert_array_equal(got["spins"], data["spins"][[2, 0]])
    np.testing.assert_array_equal(got["time"], data["time"][[2, 0]])
