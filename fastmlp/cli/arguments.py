"""What every ``fastmlp`` command shares: exit codes, errors, the help formatter, argument types.

Every subcommand's parser sets ``func``: a callable that takes the parsed
arguments and returns the exit status. Parsers use :class:`HelpFormatter`
(every default shown) and report a usage error as one line on stderr (exit
status 2).
"""
import argparse
import math

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CLIError(Exception):
    """A failure to report as one line on stderr, with exit status ``status``."""

    def __init__(self, message, status=EXIT_ERROR):
        super().__init__(message)
        self.status = status


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show every option's default, except ``None`` (the help text says what it means)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_in(minimum, maximum=None):
    """An argparse ``type``: an integer in ``[minimum, maximum]`` (no upper bound when None)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}, got {text!r}")
        return value
    return parse


def positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value
