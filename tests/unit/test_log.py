"""Rank-aware logging and the progress reporter."""

import logging

import pytest

from hpcspin.log import Progress, setup_logging


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture(autouse=True)
def _propagating_hpcspin_logger():
    """setup_logging() stops propagation; let caplog see records, restore afterwards."""
    root = logging.getLogger("hpcspin")
    saved = (root.propagate, list(root.handlers), root.level)
    root.propagate = True
    yield
    root.propagate, root.handlers[:], root.level = saved[0], saved[1], saved[2]


def records(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "hpcspin.test"]


def test_progress_interval_rate_eta(caplog):
    clock = Clock()
    log = logging.getLogger("hpcspin.test")
    log.propagate = True
    caplog.set_level(logging.INFO, logger="hpcspin.test")
    p = Progress(100, "steps", rank=0, interval=10.0, logger=log, clock=clock)
    clock.t = 1.0
    p.update(10, "t = 1")  # first line
    clock.t = 5.0
    p.update(50)  # within the interval: quiet
    clock.t = 12.0
    p.update(60)  # interval passed
    clock.t = 13.0
    p.update(100)  # the last one always prints
    msgs = records(caplog)
    assert len(msgs) == 3
    assert msgs[0].startswith("steps 10/100 ( 10.0%)  10 steps/s  ETA 0:09  t = 1")
    assert "60/100" in msgs[1] and "ETA 0:08" in msgs[1]
    assert "100/100 (100.0%)" in msgs[2]


def test_progress_silent_off_rank_zero(caplog):
    log = logging.getLogger("hpcspin.test")
    log.propagate = True
    caplog.set_level(logging.INFO, logger="hpcspin.test")
    p = Progress(10, rank=1, interval=0.0, logger=log, clock=Clock())
    p.update(10)
    assert records(caplog) == []


def test_resumed_progress_excludes_earlier_work_from_rate():
    clock = Clock()
    p = Progress(100, start=40, clock=clock)
    clock.t = 2.0
    p.update(50)
    assert p.rate() == 5.0


def test_non_root_ranks_log_warnings_only():
    logger = setup_logging(rank=3, size=4, level="INFO")
    assert logger.level == logging.WARNING
    logger = setup_logging(rank=3, size=4, level="INFO", all_ranks=True)
    assert logger.level == logging.INFO
    logger = setup_logging(rank=0, size=4, level="DEBUG")
    assert logger.level == logging.DEBUG
