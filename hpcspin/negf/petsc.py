"""PETSc backend: complex sparse LU (MUMPS) per energy, multiple right-hand sides.

The only module of hpcspin that imports petsc4py (complex-scalar build needed; set
PETSC_DIR to the complex build before Python starts). Every energy assembles
A = z - H - Sigma_L - Sigma_R as an AIJ matrix distributed over the solver
communicator, factors it with KSPPREONLY + PCLU + MUMPS and solves for several columns at
once (MatMatSolve with a dense right-hand side):

* ``first_column``: the b = 2W contact columns of slice 0. They give G^r Gamma_L G^a,
  the lead currents and T(E).
* ``diagonal_blocks``: the diagonal 2x2 site blocks of G^r need every column; they are
  solved in blocks of ``rhs_block`` columns. That is O(N) solves per energy (O(N^2)
  memory traffic) and only sensible for modest N: the equilibrium contour is where the
  PETSc path is most expensive (use "rgf" for long strips; see docs/negf.md).

Options carry the prefix (default ``hpcspin_negf_``), e.g.
``-hpcspin_negf_pc_factor_mat_solver_type superlu_dist``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpcspin.errors import HpcspinError
from hpcspin.negf.solver_base import Solver, register

try:
    from petsc4py import PETSc
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise HpcspinError(
        "the 'petsc' NEGF solver needs petsc4py with complex scalars "
        "(export PETSC_DIR=/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-complex)"
    ) from exc

if not np.issubdtype(PETSc.ScalarType, np.complexfloating):  # pragma: no cover
    raise HpcspinError("the 'petsc' NEGF solver needs a complex-scalar PETSc build")


@register("petsc")
class PETScSolver(Solver):
    """MUMPS sparse LU per energy on a communicator.

    Args:
        system: the open system.
        comm: mpi4py communicator for the distributed matrix (None: PETSc.COMM_SELF).
            Collective over comm: every rank of it must call the same methods.
        options_prefix: PETSc options prefix.
        rhs_block: columns per MatMatSolve for the diagonal blocks.
    """

    def __init__(
        self, system, comm=None, options_prefix: str = "hpcspin_negf_", rhs_block: int = 256
    ):
        super().__init__(system, comm)
        self.mpicomm = comm
        self.pcomm = PETSc.COMM_SELF if comm is None else PETSc.Comm(comm)
        self.prefix = options_prefix
        self.rhs_block = int(rhs_block)
        h = system.matrix().tocsr()
        self.n2 = h.shape[0]
        self.h = h
        size, rank = self.pcomm.getSize(), self.pcomm.getRank()
        per, extra = divmod(self.n2, size)
        self.r0 = rank * per + min(rank, extra)
        self.r1 = self.r0 + per + (1 if rank < extra else 0)

    # -- assembly and factorisation -----------------------------------------------------
    def _matrix(self, z: complex, sl: np.ndarray, sr: np.ndarray):
        b, n2 = self.system.block, self.n2
        vals = np.concatenate([(-sl).ravel(), (-sr).ravel()])
        rows = np.concatenate([np.repeat(np.arange(b), b), np.repeat(np.arange(n2 - b, n2), b)])
        cols = np.concatenate([np.tile(np.arange(b), b), np.tile(np.arange(n2 - b, n2), b)])
        if b == n2:  # one slice: both leads on the same block
            vals, rows, cols = (-(sl + sr)).ravel(), rows[: b * b], cols[: b * b]
        corner = sp.csr_matrix((vals, (rows, cols)), shape=(n2, n2))
        a = (z * sp.identity(n2, dtype=complex, format="csr") - self.h + corner).tocsr()
        a.sort_indices()
        loc = a[self.r0 : self.r1]
        m = PETSc.Mat().createAIJ(
            size=((self.r1 - self.r0, n2), (self.r1 - self.r0, n2)),
            csr=(loc.indptr.astype(PETSc.IntType), loc.indices.astype(PETSc.IntType), loc.data),
            comm=self.pcomm,
        )
        m.assemble()
        return m

    def _ksp(self, mat):
        ksp = PETSc.KSP().create(comm=self.pcomm)
        ksp.setOptionsPrefix(self.prefix)
        ksp.setOperators(mat)
        ksp.setType(PETSc.KSP.Type.PREONLY)
        pc = ksp.getPC()
        pc.setType(PETSc.PC.Type.LU)
        pc.setFactorSolverType("mumps")
        ksp.setFromOptions()
        ksp.setUp()
        return ksp

    def _solve(self, ksp, cols: np.ndarray) -> np.ndarray:
        """Columns ``cols`` of A^-1 as a (2N, k) array on every rank of the communicator."""
        n2, k = self.n2, len(cols)
        nloc = self.r1 - self.r0
        rhs = PETSc.Mat().createDense(((nloc, n2), (None, k)), comm=self.pcomm)
        rhs.setUp()
        arr = rhs.getDenseArray()
        arr[:] = 0
        for j, c in enumerate(cols):
            if self.r0 <= c < self.r1:
                arr[c - self.r0, j] = 1.0
        rhs.assemble()
        x = PETSc.Mat().createDense(((nloc, n2), (None, k)), comm=self.pcomm)
        x.setUp()
        x.assemble()
        ksp.getPC().getFactorMatrix().matSolve(rhs, x)
        local = np.array(x.getDenseArray(), copy=True)
        rhs.destroy()
        x.destroy()
        if self.mpicomm is None or self.mpicomm.Get_size() == 1:
            return local
        return np.concatenate(self.mpicomm.allgather(local), axis=0)

    # -- interface ----------------------------------------------------------------------
    def diagonal_blocks(self, z) -> np.ndarray:
        """Site blocks G^r_ii(z), (n, N, 2, 2). Collective over comm."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        n = self.system.n_sites
        sl, sr = self.system.self_energies(z)
        out = np.empty((len(z), n, 2, 2), dtype=complex)
        step = max(2, self.rhs_block - self.rhs_block % 2)
        for k, zk in enumerate(z):
            mat = self._matrix(zk, sl[k], sr[k])
            ksp = self._ksp(mat)
            for c0 in range(0, 2 * n, step):
                cols = np.arange(c0, min(c0 + step, 2 * n))
                x = self._solve(ksp, cols)
                sites = cols[0::2] // 2
                xs = x[2 * sites[0] : 2 * (sites[-1] + 1)].reshape(len(sites), 2, len(sites), 2)
                j = np.arange(len(sites))
                out[k, sites] = xs[j, :, j, :]
            ksp.destroy()
            mat.destroy()
        return out

    def first_column(self, energies) -> np.ndarray:
        """First block column G^r_{x,0}(E), (n, L, b, b). Collective over comm."""
        e = np.atleast_1d(np.asarray(energies, dtype=complex))
        s = self.system
        b = s.block
        sl, sr = s.self_energies(e)
        out = np.empty((len(e), s.n_slices, b, b), dtype=complex)
        for k, ek in enumerate(e):
            mat = self._matrix(ek, sl[k], sr[k])
            ksp = self._ksp(mat)
            out[k] = self._solve(ksp, np.arange(b)).reshape(s.n_slices, b, b)
            ksp.destroy()
            mat.destroy()
        return out
