"""Exception types that the CLI turns into clean messages (exit status 2)."""


class HpcspinError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""

    exit_code = 2


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


class ModelMismatchError(HpcspinError):
    """A model file does not fit the lattice, deck or head it is used with."""


class DataFileError(HpcspinError):
    """An HDF5 file is missing, foreign, corrupt or of the wrong kind."""
