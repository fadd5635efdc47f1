"""hpcspin: voltage-driven spin dynamics of itinerant magnets.

NEGF reference forces, machine-learned force models and MPI-parallel
Landau-Lifshitz-Gilbert dynamics. Units: t = 1, hbar = 1, |S| = 1, a = 1.

``hpcspin.run(deck)`` runs a deck from Python (docs/python.md).
"""

__version__ = "0.1.0"

from hpcspin.api import RunResult, run  # noqa: E402  (after __version__: api imports it)

__all__ = ["RunResult", "__version__", "run"]
