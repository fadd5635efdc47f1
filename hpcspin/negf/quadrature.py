"""Adaptive Gauss-Kronrod quadrature of vector-valued integrands, in blocks over ranks.

Work is cut into *blocks* (a few quadrature intervals, or a few fixed nodes) whose
content depends only on the problem, never on the number of ranks (:func:`plan_blocks`
makes the block count of each round a multiple of 4 where it can, so that 2 or 4 ranks
get equal shares without the blocking knowing the rank count). Block ``k`` is
computed by rank group ``k % n_groups``; per-interval error estimates are gathered
on every rank, so every rank takes the same refinement decisions; the final sum adds
per-block partial sums in block order. Results are therefore bit-identical at any rank
count (and to ``comm=None``).

The communicator is passed in (an mpi4py communicator or None); this module never
imports mpi4py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hpcspin.faults import fault_point
from hpcspin.parallel.groups import group_of

# Gauss-Kronrod 7-15 rule on [-1, 1] (QUADPACK qk15).
_XK = np.array(
    [
        0.991455371120812639206854697526329,
        0.949107912342758524526189684047851,
        0.864864423359769072789712788640926,
        0.741531185599394439863864773280788,
        0.586087235467691130294144845693013,
        0.405845151377397166906606412076961,
        0.207784955007898467600689403773245,
        0.000000000000000000000000000000000,
    ]
)
_WK = np.array(
    [
        0.022935322010529224963732008058970,
        0.063092092629978553290700663189204,
        0.104790010322250183839876322541518,
        0.140653259715525918745189590510238,
        0.169004726639267902826583426598550,
        0.190350578064785409913256402421014,
        0.204432940075298892414161999234649,
        0.209482141084727828012999174891714,
    ]
)
_WG = np.array(
    [
        0.129484966168869693270611432679082,
        0.279705391489276667901467771423780,
        0.381830050505118944950369775488975,
        0.417959183673469387755102040816327,
    ]
)
GK_NODES = np.concatenate([-_XK[:-1], _XK[::-1]])  # 15 nodes, ascending
GK_WEIGHTS = np.concatenate([_WK[:-1], _WK[::-1]])
GAUSS_WEIGHTS = np.zeros(15)
GAUSS_WEIGHTS[1:15:2] = np.concatenate([_WG[:-1], _WG[::-1]])


@dataclass
class Partition:
    """Ranks grouped for block work.

    Attributes:
        comm: mpi4py communicator or None (serial).
        n_groups: number of groups (each computes whole blocks).
        group: this rank's group.
        leader: True on the rank that contributes its group's results.
    """

    comm: object = None
    n_groups: int = 1
    group: int = 0
    leader: bool = True

    @classmethod
    def of(cls, comm, n_groups: int | None = None) -> Partition:
        """Every rank its own group (default), or ``n_groups`` contiguous groups."""
        if comm is None:
            return cls()
        g, group, leader = group_of(comm.Get_rank(), comm.Get_size(), n_groups)
        return cls(comm=comm, n_groups=g, group=group, leader=leader)

    def mine(self, k: int) -> bool:
        """True if this rank's group computes block k."""
        return k % self.n_groups == self.group

    def gather(self, items: dict) -> dict:
        """Union of every leader's {block: result}. Collective over comm."""
        if self.comm is None:
            return dict(items)
        parts = self.comm.allgather(items if self.leader else {})
        out = {}
        for p in parts:
            out.update(p)
        return out


def map_blocks(n_blocks: int, fn: Callable[[int], object], part: Partition) -> list:
    """[fn(0), ..., fn(n_blocks-1)], each computed by one group. Collective over part.comm."""
    local = {}
    for k in range(n_blocks):
        if part.mine(k):
            fault_point("negf_energy_block")  # a rank failing mid-evaluation (tests)
            local[k] = fn(k)
    allres = part.gather(local)
    return [allres[k] for k in range(n_blocks)]


@dataclass
class QuadResult:
    """Outcome of :func:`adaptive_integrate`.

    Attributes:
        value: the integral (M,).
        error: estimated absolute error (sum over intervals of max_c |K - G|).
        n_points: integrand evaluations.
        n_intervals: final intervals.
        rounds: refinement rounds.
        converged: error <= tol.
        round_points: integrand evaluations of this rank in each round (balance check).
        breakpoints: per segment, the sorted end points of the final intervals (the
            grid a warm start begins from).
    """

    value: np.ndarray
    error: float
    n_points: int
    n_intervals: int
    rounds: int
    converged: bool
    round_points: list = field(default_factory=list)
    breakpoints: list = field(default_factory=list)


#: Legendre degrees summed by the calibrated estimate (K15 integrates up to 22 exactly).
TAIL_DEGREES = (23, 90)
#: Calibration of the extrapolated tail (measured: the plain extrapolation is 2-12x
#: above the true K15 error of the intervals of the reference wall and of strips).
TAIL_FACTOR = 0.25
#: Share rate^UNRESOLVED_POWER of |K - G| kept as a floor (see calibrated_error).
UNRESOLVED_POWER = 10
#: Components per interval that the calibrated estimate examines (largest |K - G|).
CALIBRATED_TOP = 4
_TAIL: dict = {}


def _tail_tables() -> dict:
    """Tables of the calibrated estimate (see :func:`calibrated_error`), built once.

    ``coef``: rows 6..14 of the map from the 15 node values to Legendre coefficients;
    ``fit``: least squares of (log amplitude, log rate) on degrees 7..14; ``r``,
    ``k15``, ``g7``: sum_k r^k |Q(P_k)| on a grid of rates r in [0, 1], for the K15
    (k = 23..89) and G7 (k = 14..89) errors of the Legendre polynomials P_k.
    """
    if _TAIL:
        return _TAIL
    from numpy.polynomial import legendre

    inv = np.linalg.inv(legendre.legvander(GK_NODES, 14))
    ks = np.arange(7, 15, dtype=float)
    eye = np.eye(TAIL_DEGREES[1])
    pk = np.array([legendre.legval(GK_NODES, eye[k]) for k in range(TAIL_DEGREES[1])])
    r = np.linspace(0.0, 1.0, 4097)
    powers = r[:, None] ** np.arange(TAIL_DEGREES[1])[None, :]
    ek = np.zeros(TAIL_DEGREES[1])
    ek[TAIL_DEGREES[0] :] = np.abs(pk[TAIL_DEGREES[0] :] @ GK_WEIGHTS)
    gk = np.zeros(TAIL_DEGREES[1])
    gk[14:] = np.abs(pk[14:] @ GAUSS_WEIGHTS)
    _TAIL.update(
        coef=inv[6:15],
        fit=np.linalg.pinv(np.stack([np.ones_like(ks), ks], axis=1)),
        r=r,
        k15=powers @ ek,
        g7=powers @ gk,
    )
    return _TAIL


def calibrated_error(vals: np.ndarray, half: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Estimated K15 error of every interval and component, (n, M).

    The 15 values of an interval define the Legendre coefficients a_0..a_14 of their
    interpolant. For an integrand analytic near the interval they decay geometrically,
    |a_k| ~ A r^k; A and r are fitted (least squares of log max(|a_k|, |a_k-1|) on
    k = 7..14, the envelope bridging the zeros of symmetric parts), and the K15 error
    is TAIL_FACTOR times the extrapolated tail sum_k A r^k |K15(P_k)| (k = 23..89; the
    rule is exact below degree 23). The same model predicts the G7 error; where the
    measured one (``d``) is larger, the estimate is scaled up by the excess. It never
    exceeds ``d``, keeps at least d r^UNRESOLVED_POWER (slowly decaying coefficients:
    a barely resolved resonance, where K15 is hardly better than G7) and a rounding
    floor. Measured against true errors in docs/negf.md.

    Args:
        vals: (n, 15, M) integrand values at the nodes.
        half: (n,) half widths.
        d: (n, M) |K15 - G7|.
    """
    tab = _tail_tables()
    a = np.abs(np.matmul(tab["coef"], vals)) * half[:, None, None]  # degrees 6..14
    y = np.log(np.maximum(a[:, :-1], a[:, 1:]) + 1e-300)  # envelope on degrees 7..14
    lin = np.matmul(tab["fit"], y)
    amp, rate = np.exp(lin[:, 0]), np.minimum(np.exp(lin[:, 1]), 1.0)
    est = TAIL_FACTOR * amp * np.interp(rate, tab["r"], tab["k15"])
    model_d = amp * np.interp(rate, tab["r"], tab["g7"])
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(model_d > 0, d / model_d, 1.0)
    est = np.minimum(est * np.maximum(excess, 1.0), d)
    est = np.maximum(est, d * rate**UNRESOLVED_POWER)
    floor = 50 * np.finfo(float).eps * half[:, None] * np.abs(vals).max(axis=1)
    return np.maximum(est, floor)


def _calibrated_max(vals: np.ndarray, half: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per-interval max of :func:`calibrated_error` over a few components.

    The CALIBRATED_TOP components of largest |K - G| of each interval are examined.
    Every component of the window integrand is built from the same Green's function
    and Fermi functions, so all share the poles that set the decay rate; the largest
    K15 error sits with the largest G7 errors. Examining a few keeps the estimate's
    cost far below the kernel's (all 4N + 8 components cost as much as the kernel).
    """
    if d.shape[1] > CALIBRATED_TOP:
        idx = np.argpartition(d, -CALIBRATED_TOP, axis=1)[:, -CALIBRATED_TOP:]
        vals = np.take_along_axis(vals, idx[:, None, :], axis=2)
        d = np.take_along_axis(d, idx, axis=1)
    return calibrated_error(vals, half, d).max(axis=1)


def _error_estimate(vals, kr, gr, half, estimate: str) -> np.ndarray:
    """Per-interval error: max over components of the (scaled) |K - G|."""
    d = np.abs(kr - gr)
    if estimate == "strict":
        return d.max(axis=1)
    if estimate == "calibrated":
        return _calibrated_max(vals, half, d)
    # QUADPACK qk15: resasc = int |f - mean f|; err = resasc min(1, (200 d / resasc)^1.5).
    mean = kr / (2 * half[:, None])
    resasc = np.einsum("j,ijm->im", GK_WEIGHTS, np.abs(vals - mean[:, None, :])) * half[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(resasc > 0, resasc * np.minimum(1.0, (200 * d / resasc) ** 1.5), d)
    return scaled.max(axis=1)


#: Block counts are rounded up to the first of these multiples that keeps blocks at
#: ``min_block`` items or more (see :func:`plan_blocks`).
BALANCE_MULTIPLES = (4, 2)


def plan_blocks(n: int, max_block: int, min_block: int = 8) -> list[int]:
    """Sizes of the blocks that ``n`` work items are cut into, in order.

    The blocking depends on ``n`` and the two bounds only (never on the rank count), so
    results stay bit-identical at any number of ranks. Blocks hold at most
    ``max_block`` items; where every block can still hold ``min_block`` items the block
    count is rounded up to a multiple of 4 (else 2; see BALANCE_MULTIPLES), and the items
    are split as evenly as possible. With 1, 2 or 4 ranks (or groups) every rank then
    gets the same number of blocks, whose sizes differ by at most one item: each
    adaptive round is balanced to one interval. (Multiples of 12 would also cover 3 and
    6 ranks but cut small rounds into blocks so small that the per-call overhead of the
    kernel costs more than the balance gains on 2 ranks: measured 0.89 vs 0.92-0.96.)
    """
    if n <= 0:
        return []
    max_block = max(1, int(max_block))
    min_block = max(1, min(int(min_block), max_block))
    nb0 = -(-n // max_block)
    nb = nb0
    for m in BALANCE_MULTIPLES:
        cand = m * -(-nb0 // m)
        if n // cand >= min_block:
            nb = cand
            break
    q, r = divmod(n, nb)
    return [q + 1] * r + [q] * (nb - r)


def _split_blocks(items: list, max_block: int, min_block: int = 8) -> list[list]:
    """Cut the (segment, a, b) items into consecutive blocks of :func:`plan_blocks` sizes."""
    out, i = [], 0
    for size in plan_blocks(len(items), max_block, min_block):
        out.append(items[i : i + size])
        i += size
    return out


def _segment_runs(blk: list) -> list[tuple[int, int, int]]:
    """(segment, start, stop) of the runs of equal segment in a block (items sorted)."""
    runs, start = [], 0
    for i in range(1, len(blk) + 1):
        if i == len(blk) or blk[i][0] != blk[start][0]:
            runs.append((blk[start][0], start, i))
            start = i
    return runs


def _choose_splits(errs: np.ndarray, widths: np.ndarray, tol: float, scale: np.ndarray):
    """Indices of intervals to bisect so that the rest sums below tol/2."""
    can = widths > 1e-13 * np.maximum(1.0, scale)
    order = np.lexsort((np.arange(len(errs)), -errs))  # largest first, ties by index
    remaining = errs.sum()
    chosen = []
    for i in order:
        if remaining <= 0.5 * tol:
            break
        if can[i]:
            chosen.append(i)
        remaining -= errs[i]
    return sorted(chosen)


def _gk_block(func, blk: list, estimate: str):
    """K15 values and per-interval error estimates of one block of intervals."""
    a = np.array([it[1] for it in blk])
    b = np.array([it[2] for it in blk])
    half = 0.5 * (b - a)
    u = (0.5 * (a + b))[:, None] + half[:, None] * GK_NODES[None, :]
    parts = [
        func(seg, u[i0:i1].ravel()).reshape(i1 - i0, 15, -1) for seg, i0, i1 in _segment_runs(blk)
    ]
    vals = parts[0] if len(parts) == 1 else np.concatenate(parts)  # no copy of one run
    kr = np.einsum("j,ijm->im", GK_WEIGHTS, vals) * half[:, None]
    gr = np.einsum("j,ijm->im", GAUSS_WEIGHTS, vals) * half[:, None]
    return kr, _error_estimate(vals, kr, gr, half, estimate)


class _Intervals:
    """Bookkeeping of the adaptive rounds: intervals, their blocks and K15 values.

    Every rank holds the same ``active`` table (errors are gathered), and K15 values
    of the blocks it computed (``local_k``).
    """

    def __init__(self, part: Partition):
        self.part = part
        self.active: dict[int, tuple] = {}  # interval id -> (seg, a, b, err, block id)
        self.local_k: dict[int, np.ndarray] = {}  # interval id -> K (own blocks only)
        self.block_members: list[list[int]] = []
        self.next_id = 0

    def run_round(self, func, pending, block_intervals, min_block, estimate) -> int:
        """Evaluate ``pending`` in blocks; returns this rank's integrand evaluations."""
        blocks = _split_blocks(pending, block_intervals, min_block)
        first_block = len(self.block_members)
        local_err, points = {}, 0
        for kb, blk in enumerate(blocks):
            bid = first_block + kb
            ids = list(range(self.next_id, self.next_id + len(blk)))
            self.next_id += len(blk)
            self.block_members.append(ids)
            if not self.part.mine(bid):
                continue
            fault_point("negf_energy_block")  # a rank failing mid-evaluation (tests)
            kr, err = _gk_block(func, blk, estimate)
            points += 15 * len(blk)
            for j, i in enumerate(ids):
                self.local_k[i] = kr[j]
            local_err[bid] = err
        errs_by_block = self.part.gather(local_err)
        for kb, blk in enumerate(blocks):
            bid = first_block + kb
            for j, it in enumerate(blk):
                self.active[self.block_members[bid][j]] = (*it, float(errs_by_block[bid][j]), bid)
        return points

    def table(self):
        """(ids, errors, widths, scales) of the active intervals, in id order."""
        keys = sorted(self.active)
        errs = np.array([self.active[k][3] for k in keys])
        widths = np.array([self.active[k][2] - self.active[k][1] for k in keys])
        scale = np.array([max(abs(self.active[k][1]), abs(self.active[k][2])) for k in keys])
        return keys, errs, widths, scale

    def bisect(self, keys: list, chosen: list) -> list:
        """Remove the chosen intervals; their halves, sorted, are the next pending list."""
        pending = []
        for i in chosen:
            seg, a, b, _, _ = self.active.pop(keys[i])
            self.local_k.pop(keys[i], None)
            m = 0.5 * (a + b)
            pending += [(seg, a, m), (seg, m, b)]
        pending.sort()
        return pending

    def total(self) -> np.ndarray:
        """Per-block partial sums of the surviving intervals, added in block order."""
        final = set(self.active)

        def partial(bid):
            acc = None
            for i in self.block_members[bid]:
                if i in final:
                    acc = self.local_k[i].copy() if acc is None else acc + self.local_k[i]
            return acc

        partials = map_blocks(len(self.block_members), partial, self.part)
        value = None
        for p in partials:
            if p is not None:
                value = p.copy() if value is None else value + p
        return value

    def breakpoints(self, n_segments: int) -> list[np.ndarray]:
        """Per segment, the sorted end points of the active intervals."""
        ends: list[list[float]] = [[] for _ in range(n_segments)]
        for seg, a, b, _, _ in self.active.values():
            ends[seg] += [a, b]
        return [np.unique(np.array(e, dtype=float)) for e in ends]


def adaptive_integrate(
    func: Callable[[int, np.ndarray], np.ndarray],
    breakpoints: list[np.ndarray],
    tol: float,
    part: Partition | None = None,
    block_intervals: int = 8,
    min_block: int = 8,
    max_rounds: int = 60,
    fixed_error: float = 0.0,
    estimate: str = "strict",
    on_round: Callable[[int, int, float, float], None] | None = None,
) -> QuadResult:
    """Globally adaptive GK15 integration of several segments at once.

    Args:
        func: ``func(segment, u)`` -> (len(u), M) real integrand values on segment
            ``segment`` at parameters ``u``.
        breakpoints: per segment, the sorted initial breakpoints (>= 2 each).
        tol: target for the total error estimate (all segments together).
        part: rank partition (None: serial).
        block_intervals: at most this many intervals per block (one integrand call per
            block and segment); see :func:`plan_blocks` for the blocking.
        min_block: fewest intervals per block when balancing (per-call overhead).
        max_rounds: bound on refinement rounds.
        fixed_error: error already spent elsewhere (subtracted from the budget).
        estimate: "quadpack" (QUADPACK's scaled |K - G|, an estimate of the Kronrod
            error), "strict" (|K - G| itself, the Gauss error: very pessimistic) or
            "calibrated" (:func:`calibrated_error`, the extrapolated Kronrod error).
        on_round: called after every round as ``on_round(round, points so far, summed
            error estimate, error budget)`` (progress reports).

    Returns:
        QuadResult. Collective over part.comm.
    """
    part = part or Partition()
    pending = [
        (s, float(a), float(b))
        for s, bp in enumerate(breakpoints)
        for a, b in zip(bp[:-1], bp[1:])
        if b > a
    ]
    book = _Intervals(part)
    n_points, rounds, round_points = 0, 0, []
    budget = max(tol - fixed_error, 0.5 * tol)
    while pending:
        rounds += 1
        round_points.append(book.run_round(func, pending, block_intervals, min_block, estimate))
        n_points += 15 * len(pending)
        keys, errs, widths, scale = book.table()
        if on_round is not None:
            on_round(rounds, n_points, float(errs.sum()), budget)
        if errs.sum() <= budget or rounds >= max_rounds:
            break
        chosen = _choose_splits(errs, widths, budget, scale)
        if not chosen:
            break
        pending = book.bisect(keys, chosen)
    total_err = float(sum(v[3] for v in book.active.values()))
    return QuadResult(
        value=book.total(),
        error=total_err,
        n_points=n_points,
        n_intervals=len(book.active),
        rounds=rounds,
        converged=total_err <= budget,
        round_points=round_points,
        breakpoints=book.breakpoints(len(breakpoints)),
    )
