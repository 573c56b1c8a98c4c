"""``python -m fastmlp.benchmarks [--slug | bench ... | compare ...]``."""
import argparse
import sys

from ..cli.bench import add_commands
from .machine import cpu_slug


def main(argv=None):
    """Print the CPU slug (``--slug``) or run ``bench`` or ``compare``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fastmlp.benchmarks",
                                     description="fastmlp's benchmark commands")
    parser.add_argument("--slug", action="store_true",
                        help="print this machine's CPU slug (for --benchmark-save) and exit")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if args.slug:
        print(cpu_slug())
        return 0
    if args.command is None:
        parser.error("give --slug or a command")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
