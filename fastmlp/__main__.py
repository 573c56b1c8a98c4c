"""``python -m fastmlp``: the command line (see :mod:`fastmlp.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
