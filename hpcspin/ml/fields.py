"""Site terms -> fields: the one place where potentials become spin fields.

Every head (:mod:`hpcspin.ml.heads`) produces site terms of three kinds; this
module turns them into the field contributions of one domain, as a force-output
wrapper turns an energy model into forces:

- energy potential eps: H^eq_i = -d/dS_i sum_j w_j eps_j,
- torque potential a: H^neq_i = S_i x d/dS_i sum_j w_j a_j,
- vector term v: H^neq_i = w_i v_i on the site itself (no gradient),

with w_j = 1 on owned valid cells and 0 elsewhere. The gradients are taken
with ``torch.autograd`` here (the reference; :mod:`hpcspin.ml.fused` is the
analytic inference path that must agree with it).
"""

from __future__ import annotations

import torch
from torch import nn

from hpcspin.ml.heads import Term


def _owned_sum(x: torch.Tensor, w_own: torch.Tensor, b: int) -> torch.Tensor:
    """Per-configuration sum (B,) of a site potential over owned valid cells."""
    return (x * w_own).reshape(b, -1).sum(1)


def _add(acc, x):
    return x if acc is None else acc + x


def potentials_to_fields(
    s: torch.Tensor,
    sm: torch.Tensor,
    terms: dict,
    term_list: tuple[Term, ...],
    w_own: torch.Tensor,
    owned: tuple[int, int, int, int],
    create_graph: bool,
) -> dict:
    """Fields of one domain from its site terms (autograd through the descriptor).

    Args:
        s: (B, nx, ny, 3) spins with ``requires_grad`` (the leaf of the graph).
        sm: the masked spins (zero on invalid cells) the descriptor was built from.
        terms: site terms of the owned cells from :meth:`ForceModel.site_terms`.
        term_list: the head's terms, in order.
        w_own: (B*ox*oy,) 1.0 on owned valid cells.
        owned: (B, hx, hy, oy): batch, halo widths and owned cells along y.
        create_graph: keep the graph (training).

    Returns:
        dict with "eq", "neq", "total" (B, nx, ny, 3) and the summed potentials
        "E" (and "A") of shape (B,).
    """
    b, hx, hy, oy = owned
    ox = w_own.shape[0] // (b * oy)
    pots = [t for t in term_list if t.kind != "vector"]
    sums = [_owned_sum(terms[t.name], w_own, b) for t in pots]
    res, eq, neq = {}, None, None
    for k, (t, p) in enumerate(zip(pots, sums)):
        keep = create_graph or k + 1 < len(pots)
        (g,) = torch.autograd.grad(p.sum(), s, create_graph=create_graph, retain_graph=keep)
        if t.kind == "energy":
            eq = -g
            res["E"] = p
        else:
            neq = _add(neq, torch.cross(sm, g, dim=-1))
            res["A"] = p
    for t in term_list:
        if t.kind == "vector":
            hv = (terms[t.name] * w_own).reshape(3, b, ox, oy).permute(1, 2, 3, 0)
            neq = _add(neq, nn.functional.pad(hv, (0, 0, hy, hy, hx, hx)))
    if neq is None:
        neq = torch.zeros_like(eq)
    if eq is None:  # a model trained on its current-induced part alone
        eq = torch.zeros_like(neq)
    res.update(eq=eq, neq=neq, total=eq + neq)
    return res
