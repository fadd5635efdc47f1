"""Lattice geometry: chain, square strip, triangular strip. Pure numpy.

Sites are numbered column by column along the transport direction x:
``i = x * W + y`` (x = 0..L-1, y = 0..W-1), so slice x (the sites an RGF
sweep visits together) is the contiguous range ``[x*W, (x+1)*W)``.
The chain is the strip with W = 1.
"""

from hpcspin.lattice.geometry import KINDS, Lattice, cartesian, make_lattice

__all__ = ["KINDS", "Lattice", "cartesian", "make_lattice"]
