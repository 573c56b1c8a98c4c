"""The ``fastmlp`` command line; the console script is :func:`fastmlp.cli.main`.

=============== ==============================================================
module          what
=============== ==============================================================
``parser``      the top-level parser and :func:`main` (a bare ``fastmlp`` runs ``train``)
``arguments``   exit codes, :class:`CLIError`, the help formatter, argparse types
``train``       ``fastmlp train``: the chapter's job, its data, backends, output
``console``     the Ctrl-C flag, the progress bar, the wall-time clock
``bench``       the ``bench`` and ``compare`` parsers over :mod:`fastmlp.benchmarks`
=============== ==============================================================
"""
from .parser import main

__all__ = ["main"]
