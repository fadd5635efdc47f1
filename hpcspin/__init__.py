"""hpcspin: voltage-driven spin dynamics of itinerant magnets.

NEGF reference forces, machine-learned force models and MPI-parallel
Landau-Lifshitz-Gilbert dynamics. Units: t = 1, hbar = 1, |S| = 1, a = 1.
"""

__version__ = "0.1.0"
