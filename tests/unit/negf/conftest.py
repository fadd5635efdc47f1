import numpy as np
import pytest

from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice


def _walls(n_steps: int, step: float = 3e-4):
    """A tilted 12 x 3 Bloch wall, then n_steps small moves (as dynamics steps)."""
    lat = make_lattice("square", 12, 3)
    rng = np.random.default_rng(3)
    s = domain_wall(lat, 5.5, 2.0, "bloch") + 1e-4 * rng.normal(size=(lat.n_sites, 3))
    kick = rng.normal(size=s.shape)
    out = []
    for k in range(n_steps + 1):
        x = s + k * step * kick
        out.append(x / np.linalg.norm(x, axis=1)[:, None])
    return lat, out


@pytest.fixture
def tilted_walls():
    """``tilted_walls(n_steps, step=3e-4)`` -> (lattice, [spins]): a tilted 12 x 3 wall
    and n_steps small moves of it (the pole-following tests' sequence)."""
    return _walls
