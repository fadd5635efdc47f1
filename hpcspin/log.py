"""Rank-aware logging and a progress reporter for long loops.

Every line carries ``[rank/size]``; ranks other than 0 log only warnings and
errors unless ``all_ranks`` is set, so a 64-rank job does not print 64 copies.
"""

from __future__ import annotations

import logging
import sys
import time

_FORMAT = "%(asctime)s [%(rank)s/%(size)s] %(levelname)s %(name)s: %(message)s"


class _RankFilter(logging.Filter):
    def __init__(self, rank: int, size: int):
        super().__init__()
        self.rank, self.size = rank, size

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank, record.size = self.rank, self.size
        return True


def setup_logging(rank: int = 0, size: int = 1, level: str = "INFO", all_ranks: bool = False):
    """Configure the ``hpcspin`` logger for this rank.

    Args:
        rank: this process's rank in the job.
        size: number of ranks.
        level: log level name for rank 0 (and for all ranks if ``all_ranks``).
        all_ranks: if False, ranks other than 0 log WARNING and above only.
    """
    logger = logging.getLogger("hpcspin")
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr if rank else sys.stdout)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    handler.addFilter(_RankFilter(rank, size))
    logger.addHandler(handler)
    lvl = getattr(logging, level.upper(), logging.INFO)
    logger.setLevel(lvl if (rank == 0 or all_ranks) else max(lvl, logging.WARNING))
    logger.propagate = False
    return logger


def get_logger(name: str) -> logging.Logger:
    """Logger under the ``hpcspin`` hierarchy."""
    return logging.getLogger(name if name.startswith("hpcspin") else f"hpcspin.{name}")


def _fmt_seconds(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{sec:02d}" if h else f"{m:d}:{sec:02d}"


class Progress:
    """Progress lines (done/total, rate, ETA) for a long loop, from rank 0.

    Prints at most every ``interval`` seconds, plus the first and the last
    update. ``extra`` text (e.g. simulated time) is appended to each line.

    Args:
        total: number of units of work.
        label: what is counted ("steps", "configs").
        rank: only rank 0 prints.
        interval: minimum seconds between lines.
        logger: where to print (default: ``hpcspin.progress``).
        start: units already done before this run (resumed runs), excluded from the rate.
    """

    def __init__(
        self,
        total: int,
        label: str = "steps",
        rank: int = 0,
        interval: float = 10.0,
        logger: logging.Logger | None = None,
        start: int = 0,
        clock=time.perf_counter,
    ):
        self.total, self.label, self.rank = int(total), label, rank
        self.interval = interval
        self.logger = logger or get_logger("progress")
        self.start = int(start)
        self._clock = clock
        self._t0 = clock()
        self._last = -float("inf")
        self.done = int(start)

    def rate(self) -> float:
        """Units per second since the reporter was created."""
        dt = self._clock() - self._t0
        return (self.done - self.start) / dt if dt > 0 else float("nan")

    def update(self, done: int, extra: str = "") -> None:
        """Record progress; print a line if the interval has passed or the loop is done."""
        self.done = int(done)
        now = self._clock()
        final = self.done >= self.total
        if self.rank != 0 or (now - self._last < self.interval and not final):
            return
        self._last = now
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate and rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        msg = (
            f"{self.label} {self.done}/{self.total} ({pct:5.1f}%)  {rate:.3g} {self.label}/s"
            f"  ETA {_fmt_seconds(eta)}"
        )
        self.logger.info(msg + (f"  {extra}" if extra else ""))
