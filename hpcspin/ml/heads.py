"""Model heads: which site terms a model has and the networks that produce them.

A head is a list of site terms. Each term is the output of one site network
(descriptor -> numbers per site) and is one of three kinds:

- ``"energy"``: a scalar potential eps_j; the field is -dE/dS_i, E = sum_j eps_j
  (conservative, sees no bias);
- ``"torque"``: a scalar potential a_j; the field is S_i x dA/dS_i, A = sum_j a_j
  (the paper's nonequilibrium form);
- ``"vector"``: coefficients c_k,i of the equivariant basis v_k,i of the window;
  the field is sum_k c_k,i v_k,i on site i itself.

How each kind becomes a field is :mod:`hpcspin.ml.fields`; the descriptor, the
mirror average and the bias gate are shared by every head (:mod:`hpcspin.ml.model`).
A new head is one more entry of :data:`HEAD_TERMS` (and, for a new kind of term,
one rule in :mod:`hpcspin.ml.fields` and :mod:`hpcspin.ml.fused`); the head tests
iterate over :data:`HEADS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Term:
    """One site term of a head.

    Attributes:
        name: key of the term in :meth:`ForceModel.site_terms` ("eps", "a", "vec").
        net: attribute name of its network (the model file's state-dict prefix).
        kind: "energy", "torque" or "vector" (see the module docstring).
    """

    name: str
    net: str
    kind: str

    @property
    def equilibrium(self) -> bool:
        """True for the conservative term: it does not see the bias and is not gated."""
        return self.kind == "energy"

    @property
    def scale(self) -> str:
        """Name of the output-scale buffer of the term."""
        return "scale_eq" if self.equilibrium else "scale_neq"


ENERGY = Term("eps", "energy_net", "energy")
TORQUE = Term("a", "a_net", "torque")
VECTOR = Term("vec", "vec_net", "vector")

#: Head name -> its terms, in network-creation order (fixes parameter order).
HEAD_TERMS: dict[str, tuple[Term, ...]] = {
    "E": (ENERGY,),
    "EA": (ENERGY, TORQUE),
    "E+vector": (ENERGY, VECTOR),
}
HEADS = tuple(HEAD_TERMS)


class MLP(nn.Module):
    """Smooth (SiLU) multilayer perceptron, descriptor -> site outputs."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int, dtype=torch.float64):
        super().__init__()
        layers, last = [], n_in
        for h in hidden:
            layers += [nn.Linear(last, h, dtype=dtype), nn.SiLU()]
            last = h
        layers.append(nn.Linear(last, n_out, dtype=dtype))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to (M, n_in) features."""
        return self.net(x)

    def linears(self) -> list[nn.Linear]:
        """The affine layers in order (a SiLU follows every one but the last)."""
        return [m for m in self.net if isinstance(m, nn.Linear)]


def head_terms(head: str) -> tuple[Term, ...]:
    """The terms of ``head`` (KeyError for an unknown head; ModelSpec checks names)."""
    return HEAD_TERMS[head]


def build_networks(
    head: str, n_features: int, n_basis: int, hidden: tuple[int, ...], dtype
) -> dict[str, MLP]:
    """One network per term of ``head``: {net attribute name: MLP}.

    Potentials have one output per site, vector terms one per basis vector.
    """
    nets = {}
    for t in head_terms(head):
        n_out = n_basis if t.kind == "vector" else 1
        nets[t.net] = MLP(n_features, hidden, n_out, dtype)
    return nets
