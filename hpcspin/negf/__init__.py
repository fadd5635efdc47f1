"""Non-equilibrium Green's functions of the s-d model (docs/physics.md, steady-state NEGF).

Entry point: :class:`NEGFEngine` (spins -> spin density, field, charge, current).
Backends: ``get_solver("rgf" | "petsc" | "dense")``.
"""

from hpcspin.negf.engine import DEFAULT_TOL, ElectronParams, NEGFEngine, NEGFResult
from hpcspin.negf.leads import Leads, surface_gf_1d
from hpcspin.negf.solvers import get_solver
from hpcspin.negf.system import OpenSystem

__all__ = [
    "DEFAULT_TOL",
    "ElectronParams",
    "NEGFEngine",
    "NEGFResult",
    "Leads",
    "OpenSystem",
    "get_solver",
    "surface_gf_1d",
]
