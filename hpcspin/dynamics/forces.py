"""Force providers for the LLG integrators on a decomposed lattice.

A provider turns the halo-filled grid of a rank's domain into the field on the
rank's owned cells. :class:`DomainField` sums the providers and is the
``field_fn`` that the integrators call with owned spins (ox, oy, 3).

Providers:
    ClassicalForce  exchange, anisotropies, Zeeman (halo 1).
    MLForce         an ML model from hpcspin.ml on this rank's device (halo = radius);
                    ghost contributions of the conservative head are summed back to
                    their owners by the reverse halo exchange.
    NEGFForce       the exact NEGF field of the whole system (spins gathered on every
                    rank, energy points split over ranks); for modest sizes.
"""

from __future__ import annotations

import numpy as np

from hpcspin.hamiltonian.spin import SpinParams, classical_energy_grid, classical_field_grid
from hpcspin.negf.warm import WarmStart


class ClassicalForce:
    """Classical spin field -dH_spin/dS on owned cells."""

    halo = (1, 1)
    name = "classical"

    def __init__(self, lattice_kind: str, params: SpinParams):
        self.kind, self.params = lattice_kind, params

    def owned_field(self, grid, decomp, halo_exchanger) -> np.ndarray:
        """Field on the owned block (ox, oy, 3) from the halo-filled grid."""
        h = classical_field_grid(grid, decomp.valid, decomp.halo, self.kind, self.params)
        return h[decomp.owned_slice]

    def owned_energy(self, grid, decomp) -> float:
        """Energy of the owned sites (bonds split so that the sum over ranks is exact)."""
        return float(classical_energy_grid(grid, decomp.valid, decomp.halo, self.kind, self.params))


class MLForce:
    """Field of an ML model evaluated on this rank's domain.

    Args:
        model: a model from :func:`hpcspin.ml.load_model` (``local_field`` API).
        globals_: global inputs, e.g. {"bias": V, "mu": mu}; updated by :meth:`set_bias`.
        device: torch device of this rank; the model is moved there (None: where it is).
        dtype: "float32" or "float64": precision of the evaluation (the model is cast);
            None keeps the model's own. The field handed to the integrator is float64.

    Torch's thread count is set here for every entry point (one per rank unless
    ``OMP_NUM_THREADS`` says otherwise, :func:`hpcspin.ml.device.rank_threads`).
    """

    name = "ml"

    def __init__(self, model, globals_: dict, device=None, dtype: str | None = None):
        from hpcspin.ml.device import cast_model, set_rank_threads

        set_rank_threads()
        self.model = cast_model(model, device, dtype)
        self.globals = dict(globals_)
        self.halo = tuple(model.halo_width)

    def set_bias(self, bias: float) -> None:
        """Change the bias input (relaxation at V = 0, then the drive)."""
        self.globals["bias"] = float(bias)

    #: Largest number of owned cells evaluated in one model call. Larger domains are
    #: cut into slabs along x (each with its own ghost cells; their contributions add
    #: up exactly), which keeps the model's temporaries small: one call on 1e6 sites
    #: spent half its time in page faults of freshly mapped buffers.
    chunk_sites = 1 << 16
    #: The same on a GPU, where one call should fill the device.
    gpu_chunk_sites = 1 << 24

    def local(self, grid, valid, halo) -> np.ndarray:
        """Contributions (nx, ny, 3) of the owned cells' potentials and vector fields."""
        hx, hy = halo
        nx, ny = valid.shape
        chunk = self.chunk_sites if self.model.device.type == "cpu" else self.gpu_chunk_sites
        step = max(1, chunk // max(1, ny - 2 * hy))
        if nx - 2 * hx <= step:
            out = self.model.local_field_numpy(grid, valid, halo, self.globals)
            return np.ascontiguousarray(out, dtype=np.float64)
        out = np.zeros(grid.shape, dtype=np.float64)
        for a in range(hx, nx - hx, step):
            sl = slice(a - hx, min(a + step, nx - hx) + hx)
            out[sl] += self.model.local_field_numpy(grid[sl], valid[sl], halo, self.globals)
        return out

    def owned_field(self, grid, decomp, halo_exchanger) -> np.ndarray:
        """Model field on owned cells: local evaluation + reverse halo of ghost parts."""
        contrib = self.local(grid, decomp.valid, decomp.halo)
        halo_exchanger.reverse(contrib)
        return contrib[decomp.owned_slice]


class NEGFForce:
    """Exact NEGF electron field J s_i for the whole system.

    Collective over the engine's communicator: every rank gathers all spins, the
    engine splits its energy points over ranks, every rank takes its owned sites.
    With an engine of scheme "fast" each evaluation starts from the previous one's
    converged window grid (:class:`~hpcspin.negf.warm.WarmStart`; ``warm_start``
    overrides).
    """

    halo = (0, 0)
    name = "negf"

    def __init__(self, engine, comm, bias: float, warm_start: bool | None = None):
        self.engine, self.comm, self.bias = engine, comm, float(bias)
        self.last_current = float("nan")
        if warm_start is None:
            warm_start = getattr(engine, "scheme", "reference") == "fast"
        self.warm = WarmStart() if warm_start else None

    def set_bias(self, bias: float) -> None:
        """Change the bias (relaxation at V = 0, then the drive)."""
        self.bias = float(bias)

    def owned_field(self, grid, decomp, halo_exchanger) -> np.ndarray:
        """NEGF field on the owned block."""
        owned = grid[decomp.owned_slice]
        spins = decomp.gather(self.comm, owned, root=None)
        res = self.engine.compute(spins, bias=self.bias, warm=self.warm)
        self.last_current = float(res.current)
        return decomp.owned_from_global(res.field)


class DomainField:
    """``field_fn`` for the integrators: owned spins -> total field on owned cells.

    Collective over the halo exchanger's communicator (every provider's collectives
    are entered in the same order on every rank).

    Args:
        decomp: this rank's Decomposition (its halo covers every provider's).
        halo_exchanger: HaloExchanger for ``decomp``.
        providers: force providers to sum.
    """

    def __init__(self, decomp, halo_exchanger, providers):
        self.decomp, self.halo, self.providers = decomp, halo_exchanger, list(providers)
        self.grid = np.zeros(decomp.shape + (3,))
        self.n_calls = 0

    def fill(self, owned: np.ndarray) -> np.ndarray:
        """Put owned spins into the grid and exchange ghosts; returns the grid."""
        self.grid[self.decomp.owned_slice] = owned
        self.halo.forward(self.grid)
        return self.grid

    def __call__(self, owned: np.ndarray) -> np.ndarray:
        """Total field on the owned cells for owned spins (ox, oy, 3). Collective."""
        grid = self.fill(owned)
        total = np.zeros_like(owned)
        for p in self.providers:
            total += p.owned_field(grid, self.decomp, self.halo)
        self.n_calls += 1
        return total

    def set_bias(self, bias: float) -> None:
        """Set the bias of every provider that has one."""
        for p in self.providers:
            if hasattr(p, "set_bias"):
                p.set_bias(bias)
