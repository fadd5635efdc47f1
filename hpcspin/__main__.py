"""``python -m hpcspin DECK ...``."""

import sys

from hpcspin.cli import main

sys.exit(main())
