"""The machine a benchmark ran on: CPU, caches, compiler target, libraries, GEMM peak, commit."""
import contextlib
import functools
import os
import platform
import re
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
import numba
import numpy as np
import threadpoolctl
from threadpoolctl import threadpool_info

from .. import __version__
from ..threads import get_num_threads
from .timing import seconds, thread_counts, thread_limit

BLAS_ENV = {
    "OPENBLAS_CORETYPE": "forces that OpenBLAS kernel instead of the one for this CPU",
    "OPENBLAS_L2_SIZE": "overrides the cache size OpenBLAS blocks its products for",
}
"""Variables that slow the reference's BLAS, with what they do."""
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER")


@functools.cache
def _cpuinfo():
    """py-cpuinfo's description of the CPU (a pytest-benchmark dependency), or {} without it."""
    try:
        import cpuinfo
    except ImportError:
        return {}
    return cpuinfo.get_cpu_info() or {}


def _proc_cpuinfo(field):
    """The first ``field`` of /proc/cpuinfo, or None."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == field:
                return value.strip()
    return None


def cpu_description():
    """Brand, vendor, family/model/stepping and core counts of this machine's CPU."""
    info = _cpuinfo()
    return {
        "brand": (info.get("brand_raw") or _proc_cpuinfo("model name") or platform.processor()
                  or platform.machine()),
        "vendor": info.get("vendor_id_raw") or _proc_cpuinfo("vendor_id"),
        "family": info.get("family"),
        "model": info.get("model"),
        "stepping": info.get("stepping"),
        "hz_advertised": info.get("hz_advertised_friendly"),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }


def cache_sizes():
    """Per-core cache sizes (``{"L1d": "48K", ...}``) from sysfs, else from py-cpuinfo."""
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        with contextlib.suppress(OSError):
            kind = (index / "type").read_text().strip()
            name = f"L{(index / 'level').read_text().strip()}"
            name += {"Data": "d", "Instruction": "i"}.get(kind, "")
            caches[name] = (index / "size").read_text().strip()
    if not caches:
        info = _cpuinfo()
        caches = {name: info[key] for name, key in (("L1d", "l1_data_cache_size"),
                                                    ("L1i", "l1_instruction_cache_size"),
                                                    ("L2", "l2_cache_size"),
                                                    ("L3", "l3_cache_size")) if key in info}
    return caches


def cpu_slug():
    """A file-name-safe name of this machine: the CPU brand, the LLVM CPU name, the core count.

    For example ``intel-xeon-rocketlake-2c`` for an ``Intel(R) Xeon(R) Processor``
    that LLVM takes for a Rocket Lake (the LLVM name tells apart CPUs that
    virtual machines give the same generic brand). Kernels compiled for another CPU
    (``NUMBA_CPU_NAME=haswell``, the AVX2 path of an AVX-512 machine) add ``-as-haswell``,
    so that ``fastmlp compare`` tells the two runs of one machine apart.
    """
    brand = re.sub(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$", " ",
                   cpu_description()["brand"].lower())
    parts = re.findall(r"[a-z0-9]+", brand)
    host = llvm.get_host_cpu_name()
    if host not in parts and host != "generic":
        parts.append(host)
    target = re.findall(r"[a-z0-9]+", (numba.config.CPU_NAME or "host").lower())
    as_target = ["as", *target] if target != ["host"] else []
    return "-".join([*parts, f"{os.cpu_count()}c", *as_target])


def peak_gflops(dtype, threads, size=1000, repeats=10):
    """Measured peak: the best GFLOP/s of ``np.dot`` on ``size`` x ``size`` matrices.

    Parameters
    ----------
    dtype : {"float64", "float32"}
    threads : int
        BLAS (and Numba) threads during the probe.
    size : int, default 1000
    repeats : int, default 10
        Timed products; the best one counts (after one untimed warm-up).

    Returns
    -------
    float
    """
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    out = np.empty_like(a)
    product = functools.partial(np.dot, a, b, out)
    with thread_limit(threads):
        product()
        best = min(seconds(product) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


@functools.cache
def fingerprint(threads=None, probe_size=1000):
    """What the timings depend on: CPU, caches, compiler target, libraries, threads, peak GFLOP/s.

    Cached: the peak probe (about a second) runs once per process and argument set.

    Parameters
    ----------
    threads : tuple of int, optional
        Thread counts to probe the peak at (default :func:`thread_counts`).
    probe_size : int, default 1000
        Matrix size of the peak probe (see :func:`peak_gflops`).

    Returns
    -------
    dict
        ``cpu``, ``caches``, ``llvm`` (the CPU name and features Numba compiles
        for), ``versions``, ``blas`` (threadpoolctl's view of each BLAS loaded),
        ``threads``, ``env`` (BLAS and thread variables), ``peak_gflops``
        (``{dtype: {str(threads): GFLOP/s}}``) and ``slug`` (:func:`cpu_slug`).
    """
    threads = tuple(threads or thread_counts())
    features = llvm.get_host_cpu_features()
    blas_keys = ("user_api", "internal_api", "prefix", "version", "architecture",
                 "threading_layer", "num_threads", "filepath")
    return {
        "cpu": cpu_description(),
        "caches": cache_sizes(),
        "llvm": {"host_cpu": llvm.get_host_cpu_name(),
                 "host_features": ",".join(sorted(name for name, on in features.items() if on)),
                 "numba_cpu_name": numba.config.CPU_NAME or "host",
                 "numba_cpu_features": numba.config.CPU_FEATURES or "host"},
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "numba": numba.__version__, "llvmlite": llvmlite.__version__,
                     "threadpoolctl": threadpoolctl.__version__, "fastmlp": __version__},
        "blas": [{key: lib.get(key) for key in blas_keys} for lib in threadpool_info()
                 if lib["user_api"] == "blas"],
        "threads": {"numba_max": numba.config.NUMBA_NUM_THREADS,
                    "fastmlp_current": get_num_threads(), "benchmarked": list(threads)},
        "env": {name: os.environ.get(name) for name in (*BLAS_ENV, *THREAD_ENV)},
        "peak_gflops": {dtype: {str(n): peak_gflops(dtype, n, probe_size) for n in threads}
                        for dtype in ("float64", "float32")},
        "slug": cpu_slug(),
    }


def machine_info(threads=None):
    """pytest-benchmark's ``machine_info`` plus ``fastmlp``: :func:`fingerprint`."""
    return {
        "node": platform.node(), "processor": platform.processor(), "machine": platform.machine(),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(), "release": platform.release(),
        "system": platform.system(), "cpu": _cpuinfo(),
        "fastmlp": fingerprint(tuple(threads) if threads else None),
    }


def commit_info(root=Path(__file__).resolve().parents[2]):
    """The checkout's commit read from ``.git`` (no git command runs), or ``unversioned``."""
    git = root / ".git"
    commit = "unversioned"
    with contextlib.suppress(OSError):
        head = (git / "HEAD").read_text().strip()
        ref = head.removeprefix("ref: ")
        commit = head if ref == head else _git_ref(git, ref)
    return {"id": commit, "project": "fastmlp", "version": __version__}


def _git_ref(git, ref):
    path = git / ref
    if path.is_file():
        return path.read_text().strip()
    for line in (git / "packed-refs").read_text().splitlines():
        if line.endswith(f" {ref}"):
            return line.split()[0]
    return "unknown"
