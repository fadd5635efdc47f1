"""VTKHDF sidecar of a trajectory: ParaView (5.12 or later) opens ``trajectory.vtkhdf``.

The sidecar holds no data of its own: its arrays are HDF5 virtual datasets that map
into ``trajectory.h5`` (the source file is named relative to the sidecar, so the pair
can be moved together). It is a transient VTKHDF ``UnstructuredGrid`` of one vertex
cell per site: points are the Cartesian site positions (chains, square and
triangular strips alike), the point array ``spins`` is the spin vector of the frame,
and each step's time is the frame's time. VTK's ``vtkHDFReader`` (ParaView's reader
of the format) reads it back in the tests. The file is rewritten whenever the
trajectory writer closes, so it always covers the complete frames.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from hpcspin.io import keys

VERSION = (2, 2)
_VTK_VERTEX = 1


def write_vtkhdf(traj_path: str, n_frames: int, n_sites: int, times, out: str | None = None):
    """Write the sidecar of ``traj_path`` (default ``<stem>.vtkhdf``). Returns its path.

    Args:
        traj_path: the trajectory (must hold ``positions``).
        n_frames: complete frames to expose.
        n_sites: N.
        times: time of each of those frames.
        out: sidecar path.
    """
    out = out or os.path.splitext(os.fspath(traj_path))[0] + ".vtkhdf"
    src = os.path.relpath(os.path.abspath(traj_path), os.path.dirname(os.path.abspath(out)))
    tmp = out + ".tmp"
    with h5py.File(tmp, "w") as f:
        g = f.create_group("VTKHDF")
        g.attrs["Version"] = np.array(VERSION, dtype=np.int64)
        kind = b"UnstructuredGrid"  # the reader wants a fixed-length ASCII string
        g.attrs.create("Type", kind, dtype=h5py.string_dtype("ascii", len(kind)))
        one = np.array([n_sites], dtype=np.int64)
        for name in ("NumberOfPoints", "NumberOfCells", "NumberOfConnectivityIds"):
            g[name] = one
        g.create_virtual_dataset("Points", _map(src, keys.POSITIONS, (n_sites, 3), None))
        g["Types"] = np.full(n_sites, _VTK_VERTEX, dtype=np.uint8)
        g["Connectivity"] = np.arange(n_sites, dtype=np.int64)
        g["Offsets"] = np.arange(n_sites + 1, dtype=np.int64)
        shape = (n_frames, n_sites, 3)
        g.create_group("PointData").create_virtual_dataset(
            "spins", _map(src, keys.SPINS, shape, (n_frames * n_sites, 3)), fillvalue=np.nan
        )
        _steps(g, n_frames, n_sites, times)
    os.replace(tmp, out)  # a reader never sees half a file
    return out


def _map(src: str, name: str, shape: tuple, as_shape: tuple | None):
    """A virtual layout of the whole dataset ``name`` of ``src`` (reshaped to as_shape)."""
    layout = h5py.VirtualLayout(shape=as_shape or shape, dtype="f8")
    layout[...] = h5py.VirtualSource(src, name, shape=shape)
    return layout


def _steps(g, n_frames: int, n_sites: int, times) -> None:
    """Transient part: every step reuses the one geometry; spins advance by N per step."""
    st = g.create_group("Steps")
    st.attrs["NSteps"] = np.int64(n_frames)
    st["Values"] = np.asarray(times, dtype=np.float64)[:n_frames]
    zeros = np.zeros(n_frames, dtype=np.int64)
    st["PartOffsets"], st["PointOffsets"] = zeros, zeros
    st["NumberOfParts"] = np.ones(n_frames, dtype=np.int64)
    st["CellOffsets"] = zeros[:, None]
    st["ConnectivityIdOffsets"] = zeros[:, None]
    st.create_group("PointDataOffsets")["spins"] = np.arange(n_frames, dtype=np.int64) * n_sites
