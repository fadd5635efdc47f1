"""Input decks: TOML text -> validated, frozen :class:`RunConfig`.

Rank 0 parses and validates; the CLI broadcasts the config or the error, so
every rank sees the same thing. This package imports no physics.
"""

from hpcspin.deck.load import load_deck, parse_deck
from hpcspin.deck.schema import SECTIONS, RunConfig

__all__ = ["SECTIONS", "RunConfig", "load_deck", "parse_deck"]
