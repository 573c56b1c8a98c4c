"""Results: pytest-benchmark's statistics, speedups, GFLOP/s, tables, result files, the plot."""
import json
import math
import re
import statistics
from pathlib import Path

from .cases import KERNEL_ORDER, PEERS, SHAPE_AXES

class BenchmarkFileError(ValueError):
    """A file that is not a benchmark result (not JSON, or no ``benchmarks`` / ``machine_info``)."""


def stats(times):
    """pytest-benchmark's ``stats`` of per-call times (seconds), one call per round."""
    data = sorted(times)
    q1, _, q3 = statistics.quantiles(data, n=4) if len(data) > 1 else (data[0],) * 3
    return {"min": data[0], "max": data[-1], "mean": statistics.fmean(data),
            "stddev": statistics.stdev(data) if len(data) > 1 else 0.0,
            "rounds": len(data), "median": statistics.median(data), "iqr": q3 - q1,
            "q1": q1, "q3": q3, "ops": len(data) / sum(data), "total": sum(data),
            "data": list(times), "iterations": 1}


def impl_of(bench):
    return (bench.get("extra_info") or {}).get("impl") or (bench.get("params") or {}).get("impl")


def float64_group(group):
    """The group of the reference a benchmark is compared with: its own, with dtype float64."""
    parts = group.split("|")
    return "|".join(parts[:2] + ["float64"] + parts[3:]) if len(parts) == 4 else group


def speedups(benchmarks):
    """``{group: speedup}`` of each fastmlp benchmark over its float64 reference twin.

    Takes ``extra_info["speedup"]`` where present, else the ratio of the medians
    of the reference in the benchmark's float64 group and of the benchmark.
    """
    reference_medians = {b.get("group"): b["stats"]["median"] for b in benchmarks
                         if impl_of(b) == "reference"}
    result = {}
    for bench in benchmarks:
        if impl_of(bench) != "fastmlp" or not bench.get("group"):
            continue
        speedup = (bench.get("extra_info") or {}).get("speedup")
        if speedup is None and float64_group(bench["group"]) in reference_medians:
            speedup = reference_medians[float64_group(bench["group"])] / bench["stats"]["median"]
        if speedup is not None:
            result[bench["group"]] = speedup
    return result


def annotate(benchmarks, machine):
    """Add ``gflops``, ``peak_fraction`` and (fastmlp only) ``speedup`` to each ``extra_info``.

    Parameters
    ----------
    benchmarks : list of dict
        pytest-benchmark's ``benchmarks`` entries of this suite (others are left alone).
    machine : dict
        ``machine_info`` with this module's ``fastmlp`` fingerprint (for the peaks).
    """
    peaks = machine["fastmlp"]["peak_gflops"]
    ours = [b for b in benchmarks if "flops" in (b.get("extra_info") or {})]
    found = speedups(ours)
    after_idle = {b["group"]: b["extra_info"]["after_idle_median"] for b in ours
                  if impl_of(b) == "reference" and "after_idle_median" in b["extra_info"]}
    for bench in ours:
        info = bench["extra_info"]
        if info["impl"] == "fastmlp" and bench["group"] in found:
            info["speedup"] = found[bench["group"]]
        reference_after_idle = after_idle.get(float64_group(bench["group"]))
        if info["impl"] == "fastmlp" and reference_after_idle and "after_idle_median" in info:
            info["speedup_after_idle"] = reference_after_idle / info["after_idle_median"]
        if info["flops"]:
            info["gflops"] = info["flops"] / bench["stats"]["median"] / 1e9
            peak = peaks.get(info["dtype"], {}).get(str(info["threads"]))
            if peak:
                info["peak_fraction"] = info["gflops"] / peak


def summary_rows(benchmarks):
    """The rows of :data:`SUMMARY_HEADERS` for annotated results, one per fastmlp benchmark."""
    medians = {(b["group"], impl_of(b)): b["stats"]["median"] for b in benchmarks}
    rows = []
    for bench in benchmarks:
        info = bench["extra_info"]
        if info["impl"] != "fastmlp":
            continue
        ref = medians.get((float64_group(bench["group"]), "reference"))
        shape = ",".join(f"{axis}={info[axis]}" for axis in SHAPE_AXES if axis in info)
        rows.append([info["kernel"], shape, info["dtype"], info["threads"],
                     format_number(ref and ref * 1e3, ".3g"),
                     format_number(bench["stats"]["median"] * 1e3, ".3g"),
                     format_number(info.get("speedup"), ".2f", "x"),
                     format_number(info.get("speedup_after_idle"), ".2f", "x"),
                     format_number(info.get("gflops"), ".1f"),
                     format_number(info.get("peak_fraction") and 100 * info["peak_fraction"], ".0f",
                             "%")])
    return rows


SUMMARY_HEADERS = ("kernel", "shape", "dtype", "threads", "reference ms", "fastmlp ms", "speedup",
                   "after idle", "GFLOP/s", "% of peak")
PEER_HEADERS = ("peer", "shape", "dtype", "threads", "peer ms", "fastmlp ms", "fastmlp faster by")


def peer_rows(benchmarks):
    """The rows of :data:`PEER_HEADERS`: each peer against fastmlp in its group (same dtype, threads)."""
    medians = {(b["group"], impl_of(b)): b["stats"]["median"] for b in benchmarks}
    rows = []
    for bench in benchmarks:
        info = bench["extra_info"]
        if info["impl"] in PEERS:
            ours = medians.get((bench["group"], "fastmlp"))
            shape = ",".join(f"{axis}={info[axis]}" for axis in SHAPE_AXES if axis in info)
            rows.append([info["impl"], shape, info["dtype"], info["threads"],
                         format_number(bench["stats"]["median"] * 1e3, ".3g"),
                         format_number(ours and ours * 1e3, ".3g"),
                         format_number(ours and bench["stats"]["median"] / ours, ".2f", "x")])
    return rows


def format_number(value, spec, suffix=""):
    return "-" if value is None else f"{value:{spec}}{suffix}"


def format_table(headers, rows):
    """A plain-text table; columns of numbers (``-`` for none) are right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    columns = list(zip(*cells)) or [()] * len(headers)
    numeric = [bool(column) and all(re.match(r"^-$|^-?[\d.]", cell) for cell in column)
               for column in columns]
    widths = [max(map(len, (header, *column))) for header, column in zip(headers, columns)]

    def line(row):
        return "  ".join(cell.rjust(w) if right else cell.ljust(w)
                         for cell, w, right in zip(row, widths, numeric)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, cells)])


def load_results(path):
    """Read a result file of ``pytest --benchmark-json``/``--benchmark-save`` or ``fastmlp bench``.

    Raises
    ------
    BenchmarkFileError
        If the file cannot be read, is not JSON, or lacks a ``benchmarks`` list
        or a ``machine_info`` object.
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BenchmarkFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkFileError(f"{path} is not a JSON file ({exc})") from exc
    if not (isinstance(data, dict) and isinstance(data.get("machine_info"), dict)
            and isinstance(data.get("benchmarks"), list)
            and all(isinstance(b, dict) and isinstance(b.get("group"), (str, type(None)))
                    and isinstance((b.get("stats") or {}).get("median"), (int, float))
                    for b in data["benchmarks"])):
        raise BenchmarkFileError(f"{path} is not a benchmark result: it needs a 'machine_info' "
                                 f"object and a 'benchmarks' list of results with stats (as "
                                 f"pytest --benchmark-json and fastmlp bench write)")
    return data


def _cpu_name(machine):
    """The machine's slug (see :func:`cpu_slug`), else its CPU brand, else ``unknown CPU``."""
    brand = (machine.get("cpu") or {}).get("brand_raw") or machine.get("processor")
    return (machine.get("fastmlp") or {}).get("slug") or brand or "unknown CPU"


def file_labels(paths, results):
    """A label per file: the CPU, then its threads and dtypes, then its name, until they differ."""
    labels = [_cpu_name(data["machine_info"]) for data in results]
    if len(set(labels)) < len(labels):
        labels = [f"{label} [t{','.join(map(str, sorted(set(_field(data, 'threads')))))} "
                  f"{','.join(sorted(set(_field(data, 'dtype'))))}]"
                  for label, data in zip(labels, results)]
    if len(set(labels)) < len(labels):
        labels = [f"{label} {Path(path).name}" for label, path in zip(labels, paths)]
    return labels


def _field(data, key):
    return [b["extra_info"][key] for b in data["benchmarks"]
            if impl_of(b) == "fastmlp" and key in (b.get("extra_info") or {})]


def _group_order(group):
    kernel, shape, dtype, threads = (group.split("|") + ["", "", ""])[:4]
    numbers = tuple(int(n) for n in re.findall(r"\d+", shape))
    return (KERNEL_ORDER.get(kernel, len(KERNEL_ORDER)), kernel, numbers, dtype,
            int(threads.lstrip("t") or 0))


def compare_table(paths):
    """``(labels, groups, table)``: per-file speedups, ``table[group][i]`` for file ``i`` (or None).

    Raises
    ------
    BenchmarkFileError
        If a file is not a benchmark result or holds no reference/fastmlp pair.
    """
    results = [load_results(path) for path in paths]
    per_file = []
    for path, data in zip(paths, results):
        found = speedups(data["benchmarks"])
        if not found:
            raise BenchmarkFileError(f"{path} holds no fastmlp/reference pair to compare")
        per_file.append(found)
    groups = sorted(set().union(*per_file), key=_group_order)
    table = {group: [found.get(group) for found in per_file] for group in groups}
    return file_labels(paths, results), groups, table


def plot_speedups(labels, groups, table, path):
    """Save a bar chart of the speedups to ``path``: one panel per kernel, one bar per file.

    Bars start at 1x (log scale): up where fastmlp is faster, down where it is slower.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    kernels = list(dict.fromkeys(group.split("|")[0] for group in groups))
    most = max(sum(group.split("|")[0] == kernel for group in groups) for kernel in kernels)
    figure = Figure(figsize=(max(6.0, 1.0 + 0.3 * most * len(labels)), 1.0 + 2.6 * len(kernels)),
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(kernels), 1, squeeze=False)[:, 0]
    width = 0.8 / len(labels)
    times = FuncFormatter(lambda value, _: f"{value:g}x")
    for ax, kernel in zip(axes, kernels):
        rows = [group for group in groups if group.split("|")[0] == kernel]
        for i, label in enumerate(labels):
            values = [table[group][i] or math.nan for group in rows]
            ax.bar([x + (i - (len(labels) - 1) / 2) * width for x in range(len(rows))],
                   [value - 1 for value in values], width, bottom=1, label=label)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(times)
        ax.yaxis.set_minor_formatter(times)
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_title(kernel)
        ax.set_ylabel("speedup")
        ax.set_xticks(range(len(rows)), [group.split("|", 1)[1] for group in rows],
                      rotation=30, ha="right", fontsize=7)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center",
                  ncols=min(2, len(labels)), fontsize=8)
    figure.savefig(path, dpi=120)
