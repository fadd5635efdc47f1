"""Inputs and outputs of :class:`~hpcspin.negf.engine.NEGFEngine`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ElectronParams:
    """Conduction-electron parameters (energies in units of t).

    Attributes:
        t: hopping in the central region.
        J: s-d exchange.
        mu: mean chemical potential; mu_L = mu + V/2, mu_R = mu - V/2.
        bias: V.
        temperature: electron temperature (>= 0).
        t_lead: hopping in the leads.
        t_contact: lead-centre hopping.
        lead: "tight-binding" or "wide-band".
        gamma: wide-band coupling (Sigma = -i gamma/2 on every contact orbital).
        onsite: on-site energies eps_i (scalar, (N,) sequence, or None).
    """

    t: float = 1.0
    J: float = 2.0
    mu: float = -1.0
    bias: float = 0.0
    temperature: float = 0.05
    t_lead: float = 1.0
    t_contact: float = 1.0
    lead: str = "tight-binding"
    gamma: float = 1.0
    onsite: object = None


@dataclass
class NEGFResult:
    """Observables of one spin configuration.

    Attributes:
        spin_density: (N, 3) s_i = Tr[sigma rho_ii].
        field: (N, 3) H_i^el = J s_i.
        charge_density: (N,) electrons per site.
        current: Landauer particle current, positive left -> right for V > 0.
        transmission: T(E) at the requested energies (or None).
        energies: those energies (or None).
        n_energy_points: Green's function evaluations (poles + quadrature nodes).
        spin_current_left: (3,) spin current from the left lead into the centre.
        spin_current_right: (3,) spin current from the centre into the right lead.
        current_left: particle current from the left lead into the centre (= current).
        error_estimate: summed quadrature error estimate.
        info: details (points per part, rounds, method).
    """

    spin_density: np.ndarray
    field: np.ndarray
    charge_density: np.ndarray
    current: float
    transmission: np.ndarray | None = None
    energies: np.ndarray | None = None
    n_energy_points: int = 0
    spin_current_left: np.ndarray = field(default_factory=lambda: np.zeros(3))
    spin_current_right: np.ndarray = field(default_factory=lambda: np.zeros(3))
    current_left: float = 0.0
    error_estimate: float = 0.0
    info: dict = field(default_factory=dict)
