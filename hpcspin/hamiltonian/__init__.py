"""Hamiltonians: s-d electrons (:mod:`.sd`) and the classical spin energy (:mod:`.spin`).

Pure numpy/scipy kernels.
"""

from hpcspin.hamiltonian.sd import (
    PAULI,
    interslice_hopping,
    intraslice_hopping,
    onsite_blocks,
    pauli_components,
    sd_matrix,
    slice_blocks,
    spin_kron,
)

__all__ = [
    "PAULI",
    "interslice_hopping",
    "intraslice_hopping",
    "onsite_blocks",
    "pauli_components",
    "sd_matrix",
    "slice_blocks",
    "spin_kron",
]
