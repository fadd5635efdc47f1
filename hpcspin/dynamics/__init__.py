"""Spin dynamics: LLG right-hand side, norm-preserving integrators, thermal noise, observables.

Kernels only (pure numpy, no MPI): field providers and the parallel driver pass a
``field_fn(spins) -> H`` to an integrator's ``step``.
"""

from hpcspin.dynamics.integrators import (
    DEFAULT_INTEGRATOR,
    INTEGRATORS,
    Integrator,
    integrate,
    make_integrator,
)
from hpcspin.dynamics.llg import llg_rhs, max_torque, normalize, rotation_field, transverse
from hpcspin.dynamics.noise import ThermalNoise, langevin_sigma, thermal_field
from hpcspin.dynamics.observables import (
    domain_wall,
    magnetisation,
    sz_profile,
    wall_centre,
    wall_centres,
    wall_velocity,
)

__all__ = [
    "DEFAULT_INTEGRATOR",
    "INTEGRATORS",
    "Integrator",
    "ThermalNoise",
    "domain_wall",
    "integrate",
    "langevin_sigma",
    "llg_rhs",
    "magnetisation",
    "make_integrator",
    "max_torque",
    "normalize",
    "rotation_field",
    "sz_profile",
    "thermal_field",
    "transverse",
    "wall_centre",
    "wall_centres",
    "wall_velocity",
]
