"""A spinning barrier for the threads of a team (see :mod:`.epoch`), on int64 atomics.

A barrier between threads that are already running costs ~0.3 us (measured on a
2-core VM), against microseconds to wake a sleeping thread: a training step of a
small minibatch takes a few. The state lives in an int64 array ``sync`` of
``SYNC_SIZE`` zeros, one counter per cache line. A waiting thread spins on ``pause``
and, after ``SPINS_BEFORE_YIELD`` rounds (~50 us), yields its core on each round:
on a busy machine the thread it waits for may be the one that needs it. Every
thread of a team is started by :mod:`fastmlp.team`, so every barrier is reached.

The same atomics hand a call to a team's worker (:func:`post`, :func:`await_post`,
:func:`nudge`) and report its return (:func:`finish`, :func:`await_done`).
"""
import platform
import sys

from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic

from ._config import jit

ARRIVED, GENERATION = 0, 8  # one cache line each (8 int64)
SYNC_SIZE = 16
SPINS_BEFORE_YIELD = 256
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
def atomic_swap(typingctx, array, index, value):
    """``array[index] = value`` atomically; returns the previous value."""
    _check(array, index, value)

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("xchg", _slot(context, builder, signature, args), value,
                                  "seq_cst")
    return types.int64(array, index, value), codegen


@intrinsic
def atomic_cas(typingctx, array, index, expected, value):
    """``array[index] = value`` if it holds ``expected``, atomically; returns whether it did."""
    _check(array, index, expected, value)

    def codegen(context, builder, signature, args):
        expected = context.cast(builder, args[2], signature.args[2], types.int64)
        value = context.cast(builder, args[3], signature.args[3], types.int64)
        pair = builder.cmpxchg(_slot(context, builder, signature, args), expected, value,
                               "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)
    return types.boolean(array, index, expected, value), codegen


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


@intrinsic
def _cycles(typingctx):
    """The CPU's cycle counter (x86 ``rdtsc``; 0 where LLVM has none)."""
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


@jit
def wait(spins):
    """One round of a spin-wait that has run ``spins`` rounds."""
    if spins < SPINS_BEFORE_YIELD:
        _pause()
    else:
        _yield_core()


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


# A team worker's hand-off (:mod:`fastmlp.team`): its ``state[0]`` is IDLE while it spins
# for work, POSTED once a call is posted, ASLEEP once it gave up spinning.
IDLE, POSTED, ASLEEP = 0, 1, 2


@jit(entry=True)
def post(state):
    """Post a call to a worker; returns whether it is asleep (then the poster must wake it)."""
    return atomic_swap(state, 0, POSTED) == ASLEEP


@jit(entry=True)
def nudge(state):
    """Have an ASLEEP worker spin again; returns whether it was asleep (then wake it)."""
    return atomic_cas(state, 0, ASLEEP, IDLE)


@jit(entry=True)
def await_post(state, cycles):
    """A worker waits for a call: True once posted, False if it spun ``cycles`` CPU cycles
    (or 2^20 rounds, where there is no cycle counter) first and is now ASLEEP (to be woken
    by whoever ends that state: :func:`post` or :func:`nudge`)."""
    spins = 0
    start = _cycles()
    while atomic_load(state, 0) != POSTED:
        if ((spins & 255) == 255 and (_cycles() - start > cycles or spins > 1 << 20)
                and atomic_cas(state, 0, IDLE, ASLEEP)):
            return False
        wait(spins)
        spins += 1
    atomic_store(state, 0, IDLE)
    return True


@jit(entry=True)
def finish(done, slot, call, state, cycles):
    """Worker ``slot`` has returned from call number ``call`` of its team; then
    :func:`await_post` (one call: the poster, woken, never waits for this thread's GIL)."""
    atomic_store(done, slot * GENERATION, call)
    return await_post(state, cycles)


@jit(entry=True)
def await_done(done, size, call):
    """The poster waits until workers ``1..size-1`` have returned from call number ``call``."""
    for slot in range(1, size):
        spins = 0
        while atomic_load(done, slot * GENERATION) < call:
            wait(spins)
            spins += 1
