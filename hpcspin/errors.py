"""Exception types that the CLI turns into clean messages (exit status 2)."""


class HpcspinError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""

    exit_code = 2
    #: True when every rank raises the same error at the same point (e.g. after a
    #: broadcast decision); the CLI then exits cleanly instead of aborting the job.
    collective = False


class DeckError(HpcspinError):
    """One or more problems in an input deck.

    Attributes:
        problems: every problem found, each formatted as
            ``[section] key = value: rule (hint)``.
    """

    def __init__(self, problems: list[str], source: str = "deck"):
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''}\n{lines}")
        self.collective = True

    def __reduce__(self):  # keep the problem list when broadcast with pickle
        return (self.__class__, (self.problems, self.source))


class ModelMismatchError(HpcspinError):
    """A model file does not fit the lattice, deck or head it is used with."""


class DataFileError(HpcspinError):
    """An HDF5 file is missing, foreign, corrupt or of the wrong kind."""


class RunInterrupted(Exception):  # noqa: N818  (a state, not a failure)
    """The run stopped early on a signal after writing a checkpoint (exit status 75)."""

    exit_code = 75


#: Exit statuses of ``python -m hpcspin`` (the jobs/ templates rely on them).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2
EXIT_INCOMPLETE = 75
