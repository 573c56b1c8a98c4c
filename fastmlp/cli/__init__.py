"""The ``fastmlp`` command line; the console script is :func:`fastmlp.cli.main`.

=============== ==============================================================
module          what
=============== ==============================================================
``parser``      the top-level parser and :func:`main` (a bare ``fastmlp`` runs ``train``)
``arguments``   exit codes, :class:`CLIError`, the help formatter, argparse types
``train``       ``fastmlp train``: the chapter's job, its data, options, output
``backends``    what trains: :class:`~fastmlp.cli.backends.Backend`, the chapter model's two
``deep``        ``fastmlp train`` on the general network: options, checks, trainers, backends
``console``     the Ctrl-C flag, the progress bar, the wall-time clock
``bench``       the ``bench`` and ``compare`` parsers over :mod:`fastmlp.benchmarks`
=============== ==============================================================
"""
from .parser import main

__all__ = ["main"]
