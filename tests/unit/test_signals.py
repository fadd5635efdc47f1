"""SignalFlag nesting: the driver's flag covers the whole task, signals are never lost."""

import os
import signal

from hpcspin.tasks.signals import SignalFlag, record_exit


def test_signal_between_loops_is_recorded_not_fatal():
    with SignalFlag() as task:
        with SignalFlag() as loop:
            pass
        os.kill(os.getpid(), signal.SIGTERM)  # e.g. after the last epoch: still alive
        assert task.signum == signal.SIGTERM and loop.signum == 0
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_signal_before_a_loop_is_passed_on_to_it():
    with SignalFlag() as task:
        os.kill(os.getpid(), signal.SIGUSR1)  # while loading, before the loop
        with SignalFlag() as loop:
            assert loop.requested and loop.signum == signal.SIGUSR1
        assert task.requested


def test_signal_inside_a_loop_reaches_the_enclosing_flag():
    with SignalFlag() as task:
        with SignalFlag() as loop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert loop.signum == signal.SIGTERM
        assert task.signum == signal.SIGTERM


def test_record_exit_appends_rank_and_status(tmp_path, monkeypatch):
    path = tmp_path / "exit"
    monkeypatch.setenv("HPCSPIN_EXIT_FILE", str(path))
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    record_exit(75)
    record_exit(0)
    assert path.read_text() == "3 75\n3 0\n"
    monkeypatch.delenv("HPCSPIN_EXIT_FILE")
    record_exit(1)  # no file set: nothing written, no error
