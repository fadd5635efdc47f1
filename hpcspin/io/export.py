"""Export a trajectory to OVF 2.0, extxyz or a VTKHDF sidecar.

OVF is read by mumax3, OOMMF, Spirit and ubermag; extxyz by ASE and OVITO; VTKHDF by
ParaView (5.12 or later) and VTK.

``python -m hpcspin export runs/demo/trajectory.h5 --format ovf --frames ::10``

- OVF 2.0: one file per frame, ``<stem>_<frame>.ovf``, a rectangular mesh of L x W x 1
  cells of size 1 (lattice constants, ``meshunit: a``), values S_x S_y S_z in the
  OVF order (x fastest); text, or binary with 4- or 8-byte floats. OVF meshes are
  rectangular: the triangular strip is refused (use extxyz or VTKHDF, which store
  the Cartesian positions).
- extxyz: one file, one block per frame: species ``X``, Cartesian positions ``pos``
  and the unit spins ``spin``; time and step in the comment line; the cell spans the
  strip (periodic along y for periodic strips).
- VTKHDF: the sidecar of :mod:`hpcspin.io.vtkhdf` (the dynamics task writes it too;
  this adds it to older trajectories).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.io import keys
from hpcspin.io.h5 import open_checked
from hpcspin.lattice import cartesian

FORMATS = ("ovf", "extxyz", "vtkhdf")
#: OVF 2.0 binary check values (written before the data, little-endian).
_OVF_CHECK = {4: (np.dtype("<f4"), 1234567.0), 8: (np.dtype("<f8"), 123456789012345.0)}


def frame_indices(spec: str, n_frames: int) -> list[int]:
    """Frames selected by ``spec``: "all", "first", "last", "i", "i,j,k" or a slice "a:b:c".

    Raises:
        HpcspinError: a malformed spec or a frame out of range (names both).
    """
    spec = spec.strip()
    if spec in ("", "all"):
        return list(range(n_frames))
    if spec in ("first", "last"):
        return [0 if spec == "first" else n_frames - 1] if n_frames else []
    try:
        if ":" in spec:
            parts = [int(p) if p.strip() else None for p in spec.split(":")]
            if len(parts) > 3:
                raise ValueError
            return list(range(n_frames))[slice(*parts)]
        idx = [int(p) for p in spec.split(",")]
    except ValueError:
        raise HpcspinError(
            f"--frames {spec!r}: expected all, first, last, a list like 0,5,9 or a slice "
            "like 0:100:10"
        ) from None
    bad = [i for i in idx if not -n_frames <= i < n_frames]
    if bad:
        raise HpcspinError(f"--frames {spec!r}: frame(s) {bad} outside 0..{n_frames - 1}")
    return [i % n_frames for i in idx]


def read_frames(path: str, frames: str = "all") -> dict:
    """Spins, times and geometry of the selected frames of a trajectory.

    Returns:
        dict with ``spins`` (k, N, 3), ``time``, ``step``, ``frames`` (indices),
        ``positions`` (N, 3), ``length``, ``width``, ``kind``, ``periodic``.

    Raises:
        DataFileError: missing or foreign file; HpcspinError: bad frame selection.
    """
    with open_checked(path, "trajectory") as f:
        n = int(f.attrs[keys.N_FRAMES_DONE])
        idx = frame_indices(frames, n)
        length, width = (int(v) for v in np.asarray(f.attrs[keys.LATTICE_SHAPE]).reshape(-1))
        lat = json.loads(f.attrs.get(keys.CONFIG, "{}") or "{}").get("lattice", {})
        kind = str(f.attrs.get(keys.LATTICE_KIND, lat.get("kind", "chain")))
        pos = f[keys.POSITIONS][()] if keys.POSITIONS in f else None
        uniq = sorted(set(idx))  # h5py reads increasing, distinct indices
        spins = f[keys.SPINS][uniq] if uniq else np.zeros((0, length * width, 3))
        out = {
            "spins": spins[np.searchsorted(uniq, idx)] if idx else spins,
            "time": f[keys.TIME][:n][idx],
            "step": f[keys.STEP][:n][idx],
        }
    out.update(frames=idx, length=length, width=width, kind=kind)
    out["periodic"] = bool(lat.get("periodic", False))
    out["positions"] = pos if pos is not None else positions_of(kind, length, width)
    return out


def positions_of(kind: str, length: int, width: int) -> np.ndarray:
    """Cartesian positions (N, 3) of the sites of a strip (site i = x * W + y)."""
    from hpcspin.lattice import make_lattice

    pos = np.zeros((length * width, 3))
    pos[:, :2] = make_lattice(kind, length, width).positions
    return pos


# -- OVF 2.0 ---------------------------------------------------------------------------
def ovf_text_header(length: int, width: int, title: str, desc: list[str], data: str) -> str:
    """Header lines of a one-segment OVF 2.0 file, up to ``# Begin: Data <data>``."""
    lines = [
        "OOMMF OVF 2.0",
        "",
        "Segment count: 1",
        "",
        "Begin: Segment",
        "Begin: Header",
        "",
        f"Title: {title}",
        *(f"Desc: {d}" for d in desc),
        "meshtype: rectangular",
        "meshunit: a",
        "xmin: -0.5",
        "ymin: -0.5",
        "zmin: -0.5",
        f"xmax: {length - 0.5}",
        f"ymax: {width - 0.5}",
        "zmax: 0.5",
        "valuedim: 3",
        "valuelabels: S_x S_y S_z",
        "valueunits: 1 1 1",
        "xbase: 0",
        "ybase: 0",
        "zbase: 0",
        f"xnodes: {length}",
        f"ynodes: {width}",
        "znodes: 1",
        "xstepsize: 1",
        "ystepsize: 1",
        "zstepsize: 1",
        "",
        "End: Header",
        "",
        f"Begin: Data {data}",
    ]
    return "".join(f"# {s}\n" if s else "#\n" for s in lines)


def write_ovf(
    path: str, spins: np.ndarray, length: int, width: int, desc: list[str], binary: int = 0
) -> str:
    """One OVF 2.0 file of the spins (N, 3) of an L x W strip (site i = x * W + y).

    Args:
        path: output file.
        spins: (N, 3).
        length: L.
        width: W.
        desc: description lines (time, step, source).
        binary: 0 text, 4 or 8 binary with that float size.
    """
    # OVF order: x fastest, then y; hpcspin's: y fastest.
    v = np.asarray(spins, dtype=float).reshape(length, width, 3).transpose(1, 0, 2)
    v = v.reshape(-1, 3)
    data = "Text" if not binary else f"Binary {binary}"
    head = ovf_text_header(length, width, "spins (hpcspin)", desc, data)
    with open(path, "wb") as fh:
        fh.write(head.encode())
        if binary:
            dtype, check = _OVF_CHECK[binary]
            fh.write(np.array([check], dtype=dtype).tobytes())
            fh.write(v.astype(dtype).tobytes())
            fh.write(b"\n")
        else:
            np.savetxt(fh, v, fmt="%.17g")
        fh.write(f"# End: Data {data}\n# End: Segment\n".encode())
    return path


def export_ovf(frames: dict, stem: str, binary: int = 0) -> list[str]:
    """``<stem>_<frame>.ovf`` for every selected frame. Returns the paths.

    Raises:
        HpcspinError: a triangular strip (OVF meshes are rectangular).
    """
    if frames["kind"] == "triangular":
        raise HpcspinError(
            "OVF 2.0 holds rectangular meshes only; the triangular strip's sites are "
            "sheared: export it as extxyz or vtkhdf (both store the Cartesian positions)"
        )
    paths = []
    for k, i in enumerate(frames["frames"]):
        desc = [
            f"Total simulation time: {frames['time'][k]!r} hbar/t",
            f"step {int(frames['step'][k])}, frame {i}; lengths in lattice constants a",
        ]
        path = f"{stem}_{i:06d}.ovf"
        write_ovf(path, frames["spins"][k], frames["length"], frames["width"], desc, binary)
        paths.append(path)
    return paths


# -- extxyz ----------------------------------------------------------------------------
def export_extxyz(frames: dict, path: str) -> str:
    """All selected frames into one extended-XYZ file. Returns the path."""
    length, width = frames["length"], frames["width"]
    a2 = cartesian(frames["kind"], [[0, width]])[0]  # the strip's transverse edge
    cell = [length, 0.0, 0.0, a2[0], a2[1], 0.0, 0.0, 0.0, 1.0]
    lattice = " ".join(f"{c:.17g}" for c in cell)
    pbc = "F T F" if frames["periodic"] else "F F F"
    pos = np.asarray(frames["positions"], dtype=float)
    with open(path, "w") as fh:
        for k in range(len(frames["frames"])):
            fh.write(f"{pos.shape[0]}\n")
            fh.write(
                f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:spin:R:3 '
                f"time={frames['time'][k]!r} step={int(frames['step'][k])} "
                f'frame={frames["frames"][k]} pbc="{pbc}"\n'
            )
            block = np.hstack([pos, frames["spins"][k]])
            for row in block:
                fh.write("X " + " ".join(f"{v:.17g}" for v in row) + "\n")
    return path


def export(traj: str, fmt: str, out: str | None = None, frames: str = "all", binary: int = 0):
    """Export ``traj`` to ``fmt``; returns the paths written.

    Args:
        traj: trajectory file.
        fmt: "ovf", "extxyz" or "vtkhdf".
        out: output path (ovf: the stem of the frame files); default next to ``traj``.
        frames: frame selection (:func:`frame_indices`; vtkhdf always takes every frame).
        binary: OVF data as text (0) or binary floats of 4 or 8 bytes.
    """
    if fmt not in FORMATS:
        raise HpcspinError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    stem = os.path.splitext(traj)[0]
    data = read_frames(traj, "all" if fmt == "vtkhdf" else frames)
    if fmt == "ovf":
        return export_ovf(data, re.sub(r"\.ovf$", "", out or stem), binary)
    if fmt == "extxyz":
        return [export_extxyz(data, out or stem + ".extxyz")]
    from hpcspin.io.vtkhdf import write_vtkhdf

    _ensure_positions(traj, data)
    n_sites = data["length"] * data["width"]
    return [write_vtkhdf(traj, len(data["time"]), n_sites, data["time"], out)]


def _ensure_positions(traj: str, data: dict) -> None:
    """Add the positions dataset to a trajectory written before it existed."""
    import h5py

    with h5py.File(traj, "r+") as f:
        if keys.POSITIONS not in f:
            keys.annotate(f.create_dataset(keys.POSITIONS, data=data["positions"]), "trajectory")
