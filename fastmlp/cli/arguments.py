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


def float_in(low, high=math.inf, high_open=False):
    """An argparse ``type``: a finite number in ``[low, high]`` (``[low, high)`` if `high_open`)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high
                and not (high_open and value == high)):
            bounds = f">= {low:g}" if high == math.inf else \
                f"in [{low:g}, {high:g}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bounds}, got {text!r}")
        return value
    return parse


def widths(text):
    """argparse type: comma-separated layer widths, each an integer >= 1 (``"256,128"``)."""
    parts = text.split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be one or more integers >= 1 separated by "
                                         f"commas, such as 256,128, got {text!r}")
    return values
