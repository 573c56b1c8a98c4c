"""Threads that stay in one parallel region: atomics, a spinning barrier, a team.

A Numba parallel region costs ~1.7 us to enter and leave (measured on the 2-core
development VM); a barrier between threads already running costs ~0.3 us. Steps
of a few microseconds (small minibatches) therefore run a whole epoch in one
region and meet at :func:`barrier` between steps.

The state lives in an int64 array ``sync`` of ``SYNC_SIZE`` zeros, 64-byte aligned,
one counter per cache line. A waiting thread spins on ``pause`` and, after
``SPINS_BEFORE_YIELD`` rounds (~50 us), yields its core on each round: on a busy
machine the thread it waits for may be the one that needs it.

Nothing guarantees that a region's iterations run at the same time (a thread
pool may run two on one thread, or start one late), and a barrier that waits for
an iteration that never starts waits forever. :func:`join_team` therefore waits a
bounded time for the whole team and otherwise lets the first thread run alone.
"""
import platform
import sys

from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic

from ._config import jit

JOINED, ARRIVED, GENERATION = 0, 8, 16  # one cache line each (8 int64)
SYNC_SIZE = 24
SPINS_BEFORE_YIELD = 1024
JOIN_TIMEOUT_SPINS = 1 << 16  # after ~50 us of pauses, yields: at least ~65,000 scheduler rounds
ALONE = 1 << 40  # JOINED after the first thread gives up waiting: late threads leave
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
_POSIX = sys.platform != "win32"


def _slot(context, builder, signature, args):
    array = context.make_array(signature.args[0])(context, builder, args[0])
    index = context.cast(builder, args[1], signature.args[1], types.intp)
    return builder.gep(array.data, [index])


def _check(array, *integers):
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        raise TypingError(f"atomics take a 1-D int64 array, got {array}")
    for value in integers:
        if not isinstance(value, types.Integer):
            raise TypingError(f"atomics take integer indices and values, got {value}")


@intrinsic
def atomic_add(typingctx, array, index, value):
    """``array[index] += value`` atomically; returns the previous value."""
    _check(array, index, value)

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", _slot(context, builder, signature, args), value, "seq_cst")
    return types.int64(array, index, value), codegen


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]``, read atomically (acquire)."""
    _check(array, index)

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_slot(context, builder, signature, args), "acquire", 8)
    return types.int64(array, index), codegen


@intrinsic
def atomic_store(typingctx, array, index, value):
    """``array[index] = value``, written atomically (release)."""
    _check(array, index, value)

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, _slot(context, builder, signature, args), "release", 8)
        return context.get_dummy_value()
    return types.none(array, index, value), codegen


@intrinsic
def compare_and_swap(typingctx, array, index, expected, value):
    """``array[index] = value`` if it holds ``expected``, atomically; whether it did."""
    _check(array, index, expected, value)

    def codegen(context, builder, signature, args):
        expected = context.cast(builder, args[2], signature.args[2], types.int64)
        value = context.cast(builder, args[3], signature.args[3], types.int64)
        result = builder.cmpxchg(_slot(context, builder, signature, args), expected, value,
                                 "seq_cst", "seq_cst")
        return builder.extract_value(result, 1)
    return types.boolean(array, index, expected, value), codegen


def _emit_pause(builder):
    if _X86:
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
        builder.call(fn, [])


@intrinsic
def _pause(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``; nothing elsewhere)."""
    def codegen(context, builder, signature, args):
        _emit_pause(builder)
        return context.get_dummy_value()
    return types.none(), codegen


@intrinsic
def _yield_core(typingctx):
    """``sched_yield()`` (POSIX; a ``pause`` elsewhere)."""
    def codegen(context, builder, signature, args):
        if _POSIX:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
            builder.call(fn, [])
        else:
            _emit_pause(builder)
        return context.get_dummy_value()
    return types.none(), codegen


@jit
def wait(spins):
    """One round of a spin-wait that has run ``spins`` rounds."""
    if spins < SPINS_BEFORE_YIELD:
        _pause()
    else:
        _yield_core()


@jit
def join_team(sync, team):
    """Called once by each of a region's ``team`` iterations: returns ``(slot, size)``.

    ``size`` is ``team`` when all joined in time, each with its own ``slot``; else
    the first thread runs alone (``slot`` 0, ``size`` 1) and the others get
    ``size`` 0: they leave (and their ``slot`` means nothing).
    """
    slot = atomic_add(sync, JOINED, 1)
    spins = 0
    while True:
        joined = atomic_load(sync, JOINED)
        if joined >= ALONE:
            return slot, 1 if slot == 0 else 0
        if joined == team:
            return slot, team
        if slot == 0 and spins > JOIN_TIMEOUT_SPINS and compare_and_swap(sync, JOINED, joined, ALONE):
            return slot, 1
        wait(spins)
        spins += 1


@jit
def barrier(sync, generation, size):
    """Wait until all ``size`` threads of the team arrive; returns the next ``generation``.

    Each thread counts its own generations from 0. The last to arrive resets the
    count, then opens the barrier by advancing ``GENERATION``.
    """
    if size > 1:
        if atomic_add(sync, ARRIVED, 1) == size - 1:
            atomic_store(sync, ARRIVED, 0)
            atomic_add(sync, GENERATION, 1)
        else:
            spins = 0
            while atomic_load(sync, GENERATION) == generation:
                wait(spins)
                spins += 1
    return generation + 1
