"""Collective decisions, rank groups and the non-finite stop at several ranks."""

import numpy as np
import pytest

from hpcspin.dynamics.forces import ClassicalForce
from hpcspin.dynamics.simulation import DRIVE, NonFiniteError, Simulation
from hpcspin.errors import DataFileError, HpcspinError
from hpcspin.hamiltonian.spin import SpinParams
from hpcspin.lattice import make_lattice
from hpcspin.parallel.context import PeerFailed, agree, decide, make_groups
from hpcspin.parallel.groups import group_of

PARAMS = SpinParams(J_H=1.0, K=0.1, easy_axis=(0, 0, 1), B=(0.0, 0.0, 0.01))


class NaNAt:
    """NaN at one global site from the n-th evaluation on (on the rank that owns it)."""

    halo = (1, 1)
    name = "stub-nan"

    def __init__(self, call, site):
        self.call, self.site, self.n = call, site, 0

    def owned_field(self, grid, decomp, halo_exchanger):
        self.n += 1
        h = np.zeros(decomp.owned_shape + (3,))
        x0, x1 = decomp.x_range
        if self.n >= self.call and x0 <= self.site < x1:
            h.reshape(-1, 3)[self.site - x0, 2] = np.inf
        return h


def test_non_finite_on_one_rank_stops_every_rank_with_the_same_error(comm):
    n = 8 * comm.size
    lat = make_lattice("chain", n, 1, False)
    site = n - 3  # owned by the last rank
    sim = Simulation(lat, [ClassicalForce("chain", PARAMS), NaNAt(9, site)], comm, dt=0.1)
    s = np.tile([0.0, 0.6, 0.8], (n, 1))
    state = sim.state(s, phase=DRIVE)
    with pytest.raises(NonFiniteError) as err:
        sim.drive(state, t_end=1.0, alpha=0.1)
    msg = str(err.value)
    assert f"step 3 of the drive: non-finite value at site {site}" in msg
    assert "'stub-nan'" in msg
    assert comm.allgather(msg) == [msg] * comm.size
    assert state.step == 2
    sim.free()


def test_decide_broadcasts_result_or_error(comm):
    assert decide(comm, lambda: comm.rank * 10 + 7) == 7  # rank 0's result everywhere

    def fails():
        raise DataFileError(f"bad file seen by rank {comm.rank}")

    with pytest.raises(DataFileError, match="seen by rank 0") as err:
        decide(comm, fails)
    assert err.value.collective


def test_decide_bug_on_root_is_not_a_user_error(comm):
    def bug():
        raise ZeroDivisionError("bug")

    expected = ZeroDivisionError if comm.rank == 0 else PeerFailed
    with pytest.raises(expected):
        decide(comm, bug)


def test_agree_shares_the_first_failing_ranks_error(comm):
    assert agree(comm, lambda: comm.rank) == comm.rank  # no error: own results

    def last_fails():
        if comm.rank == comm.size - 1:
            raise HpcspinError(f"only rank {comm.rank}")
        return 1

    with pytest.raises(HpcspinError, match=f"only rank {comm.size - 1}") as err:
        agree(comm, last_fails)
    assert err.value.collective


@pytest.mark.parametrize("n_groups", [1, 2, None])
def test_groups_are_contiguous_and_led_by_their_first_rank(comm, n_groups):
    g = make_groups(comm, n_groups)
    expect = group_of(comm.rank, comm.size, n_groups)
    assert (g.n_groups, g.group, g.leader) == expect
    if g.comm is not None:
        members = g.comm.allgather(comm.rank)
        assert members == sorted(members) and all(
            group_of(r, comm.size, n_groups)[1] == g.group for r in members
        )
        assert g.leader == (g.comm.rank == 0)
        assert (g.leaders is not None) == g.leader
    g.free()


def test_group_formula():
    assert [group_of(r, 4, 2) for r in range(4)] == [
        (2, 0, True),
        (2, 0, False),
        (2, 1, True),
        (2, 1, False),
    ]
    assert [group_of(r, 5, 2)[1] for r in range(5)] == [0, 0, 1, 1, 1]  # remainder: last
    assert group_of(3, 4, None) == (4, 3, True)
