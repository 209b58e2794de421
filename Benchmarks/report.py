"""Reads the figures that bench_core (SwiftPool's C API), swiftpool-bench (its Swift API)
and bench_pools.py (the Python pools) printed in one run, and prints the markdown table:
SwiftPool's median, each Python pool's median, and the ratio (how many times better
SwiftPool is), with the machine, the commit and the command. Every median is computed
here, the same way for every pool, from each run's value. Each target is checked against
the figure and marked met or NOT MET. Writes the raw figures to bench-results/.

usage: report.py SWIFTPOOL.tsv PYTHON.tsv COMMAND   (SWIFTPOOL.tsv: the C and Swift figures)
"""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys


def read(path, behaviours, settings):
    rows = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "#behaviour" and len(parts) == 4:
                behaviours.setdefault(parts[1], {})[parts[2]] = parts[3]
            elif parts[0] == "#setting" and len(parts) == 3:
                settings[parts[1]] = parts[2]
            elif len(parts) == 3 and not parts[0].startswith("#"):
                runs = [float(v) for v in parts[2].split(",") if v]
                rows[parts[0]] = {"median": statistics.median(runs), "min": min(runs),
                                  "max": max(runs), "runs": runs, "unit": parts[1]}
    return rows


def human(v, unit):
    if unit == "tasks/s":
        return f"{v / 1e6:.1f} M/s" if v >= 1e5 else f"{v:,.0f} /s"
    if unit == "GB/s":
        return f"{v:.2f} GB/s"
    if unit == "efficiency":
        return f"{v:.3f}"
    if unit == "ms":
        return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"
    if unit == "MiB/s":
        return f"{v:,.0f} MiB/s"
    if unit == "×ideal":
        return f"{v:.2f}× ideal"
    return f"{v:.2f} µs" if v < 10 else f"{v:.0f} µs"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# (SwiftPool figure, python figure prefix, label, higher is better, target). A target is
# (kind, value): ("abs", v) — the figure itself is at least v (or at most, when lower is
# better); ("ratio", v) — at least v times better than multiprocessing in this run;
# ("row", key, f) — no worse than f times SwiftPool's row `key` in this run;
# ("vs", pool, v) — at least v times better than that pool in this run.
# The C-API rows run a C function in SwiftPool and a Python function in the Python pools:
# they compare the pool plus its language, as a user choosing between them would.
ROWS = [
    ("tiny_swift", "tiny", "tiny: Swift `map { $0 * $0 }` over 1M Int, default (fresh workers per call)", True, ("abs", 150e6)),
    ("tiny_swift_keepalive", "tiny", "tiny: Swift, keep-alive, registered function", True, None),
    ("tiny_progress_swift", "tiny_progress", "tiny, observed: the keep-alive map with a progress handler (Python: tqdm over `imap`; mpire's progress bar)", True, ("row", "tiny_swift_keepalive", 1.05)),
    ("erf_swiftpool_py", "erf", "Python package: libm `erf` over 2,000,000 doubles from numpy (Python pools: `math.erf` over the same array as a list)", True, ("ratio", 10)),
    ("atan2_swiftpool_py", "atan2", "Python package: libm `atan2` over 1,000,000 pairs from two numpy arrays (Python pools: `math.atan2`, `starmap`)", True, ("ratio", 10)),
    ("tiny_insights_swift", "tiny_insights", "tiny, with insights: every task timed (mpire: `enable_insights`)", True, None),
    ("latency_swift_p50", "latency_p50", "latency: Swift `apply` p50, warm (keep-alive)", False, ("abs", 5)),
    ("latency_swift_p99", "latency_p99", "latency: Swift `apply` p99, warm (keep-alive)", False, None),
    ("cpu_5ms_swift", "cpu_5ms", "cpu: 64 tasks of 5 ms, parallel efficiency (same work per task on both sides)", True, ("abs", 0.97)),
    ("cpu_50us_swift", "cpu_50us", "cpu: 20,000 tasks of 50 µs, parallel efficiency (same work per task on both sides)", True, ("abs", 0.90)),
    ("keepalive_off_swift", "keepalive_off", "keepalive: 10 maps × 1,000, 200 ms init, keep-alive off", False, None),
    ("keepalive_on_swift", "keepalive_on", "keepalive: same, keep-alive on", False, ("abs", 250)),
    ("startup_swift", "startup", "startup: 2-worker pool, one task, shut down", False, ("abs", 5)),
    ("startup_spawn_swift", "startup_spawn", "startup, spawn: 2 spawned workers (this program again), one named task, shut down (Python: multiprocessing's spawn context)", False, ("ratio", 5)),
    ("tiny_spawn_swift", "tiny_spawn", "tiny, spawn: keep-alive map of a named function over 1M Int (Python: spawn context)", True, ("row", "tiny_swift_keepalive", 1.25)),
    ("latency_spawn_swift_p50", "latency_spawn_p50", "latency, spawn: `apply` p50, warm (target: fork's)", False, ("row", "latency_swift_p50", 1.25)),
    ("sleep_threads_swift", "sleep", "threads: 800 tasks that sleep 1 ms on 16 threads (Python: `ThreadPool(16)`)", True, None),
    ("pareto_swift", "pareto", "pareto: 5,000 tasks, Pareto α 1.5, 20 µs–20 ms: makespan ÷ ideal (Swift default chunks; Python: its best chunking)", False, ("abs", 1.05)),
    ("pareto_swift_chunk1", "pareto", "pareto: Swift, chunks of 1 (target: no worse than default chunks)", False, ("row", "pareto_swift", 1.02)),
    ("one_slow_swift", "one_slow", "one-slow: 1,000 tasks, the first 300 ms, the rest 200 µs: makespan ÷ ideal", False, ("abs", 1.05)),
    ("one_slow_swift_chunk1", "one_slow", "one-slow: Swift, chunks of 1", False, ("row", "one_slow_swift", 1.02)),
    ("skew_swift", "skew", "skew: 2,000 tasks, 98% 10 µs, 2% 10 ms: makespan ÷ ideal", False, ("abs", 1.05)),
    ("skew_swift_chunk1", "skew", "skew: Swift, chunks of 1", False, ("row", "skew_swift", 1.02)),
    ("payload_c", "payload", "payload: 64 × 1 MiB doubles in, ×2, out (C API bytes form vs numpy arrays)", True, ("ratio", 5)),
    ("strings_swift", "strings", "strings: Swift `map { $0.uppercased() }` over 200,000 `String`s (Python: `str.upper`)", True, ("ratio", 5)),
    ("structs_swift", "structs", "structs: 200,000 `Codable` structs (two Doubles, a String) transformed (Python: a dataclass)", True, ("ratio", 10)),
    ("arrays_out_swift", "arrays_out", "arrays out: 2,000 tasks each returning 1,000 Doubles (Python: a list of floats)", True, ("ratio", 10)),
    ("bytes_swift", "bytes", "bytes: 64 × 1 MiB `[UInt8]` in and out, one byte changed, Swift API (Python: `bytes`)", True, ("abs", 5)),
    ("shared_swift", "shared", "shared: 1 GiB shared array summed in 16 slices", False, None),
    ("shared_128MiB_swift", "shared_128MiB", "shared: 128 MiB shared array summed in 16 slices", False, None),
    ("tiny_mpi_swift", "tiny_mpi", "mpi: tiny, `map` of x*x over 1M Int, 3 MPI ranks on this machine: rank 0 drives, 2 ranks × 1 worker (Python: mpi4py.futures `MPIPoolExecutor`, 2 workers, best chunksize)", True, ("vs", "mpi4py", 50)),
    ("cpu_mpi_swift", "cpu_mpi", "mpi: cpu, 96 tasks of 5 ms busy work over the same 3 ranks", True, None),
    ("tiny_c_direct", "tiny", "tiny-c: map x*x over 1M int64, C function, direct call (caller arrays)", True, ("abs", 100e6)),
    ("tiny_c_direct_shared", "tiny", "tiny-c: same, buffers in the shared arena (zero-copy)", True, ("abs", 100e6)),
    ("tiny_c_ffi", "tiny", "tiny-c: map x*x over 1M int64, C function through libffi", True, ("abs", 40e6)),
    ("tiny_c_ffi_shared", "tiny", "tiny-c: libffi, shared arena", True, ("abs", 40e6)),
    ("tiny_c_direct_4_workers", "tiny", "tiny-c: direct, 4 workers on 2 cores", True, None),
    ("latency_p50", "latency_p50", "latency: C API apply round trip p50, warm", False, ("abs", 2)),
    ("latency_p99", "latency_p99", "latency: C API apply round trip p99, warm", False, None),
    ("idle_latency_p50", "idle_latency_p50", "idle-latency: C API p50, 1 ms idle between calls", False, ("abs", 60)),
    ("idle_latency_p99", "idle_latency_p99", "idle-latency: C API p99, 1 ms idle between calls", False, None),
    ("pareto_c_auto", "pareto", "pareto: C API, automatic chunks", False, ("abs", 1.05)),
    ("pareto_c_chunk1", "pareto", "pareto: C API, chunks of 1", False, ("row", "pareto_c_auto", 1.02)),
    ("pareto_threads", "pareto", "pareto: two plain C threads taking tasks one by one (reference)", False, None),
    ("one_slow_c_auto", "one_slow", "one-slow: C API, automatic chunks", False, ("abs", 1.05)),
    ("one_slow_c_chunk1", "one_slow", "one-slow: C API, chunks of 1", False, ("row", "one_slow_c_auto", 1.02)),
    ("one_slow_threads", "one_slow", "one-slow: two plain C threads (reference)", False, None),
    ("skew_c_auto", "skew", "skew: C API, automatic chunks", False, ("abs", 1.05)),
    ("skew_c_chunk1", "skew", "skew: C API, chunks of 1", False, ("row", "skew_c_auto", 1.02)),
    ("skew_threads", "skew", "skew: two plain C threads (reference)", False, None),
]


def target_text(target, unit, higher):
    if not target:
        return ""
    kind, v = target[0], target[1]
    if kind == "ratio":
        return f"≥ {v:g}× multiprocessing"
    if kind == "vs":
        return f"≥ {target[2]:g}× {v}"
    if kind == "row":
        return f"{'≥' if higher else '≤'} {target[2]:g}× {v}"
    return ("≥ " if higher else "≤ ") + human(v, unit)


def target_met(target, figure, higher, ratio_vs_mp, ours, ratios):
    """True or False; None when the figure it needs is missing."""
    kind, v = target[0], target[1]
    if kind == "ratio":
        return None if ratio_vs_mp is None else ratio_vs_mp >= v
    if kind == "vs":
        return None if v not in ratios else ratios[v] >= target[2]
    if kind == "row":
        if v not in ours:
            return None
        bound = ours[v]["median"] * target[2] if not higher else ours[v]["median"] / target[2]
        return figure >= bound if higher else figure <= bound
    return figure >= v if higher else figure <= v


# The rows the chart shows, with their short labels.
CHART = {"tiny_swift": "tiny (Swift)", "strings_swift": "strings (Swift)", "structs_swift": "structs (Swift)",
         "arrays_out_swift": "arrays out (Swift)", "tiny_c_direct": "tiny-c (C API)", "latency_swift_p50": "latency p50 (Swift)",
         "latency_p50": "latency p50 (C API)", "cpu_50us_swift": "cpu 50 µs", "payload_c": "payload",
         "pareto_swift": "pareto", "skew_swift": "skew", "startup_swift": "startup"}
POOLS = ["multiprocessing", "ProcessPoolExecutor", "mpire", "loky", "trio_parallel", "ThreadPool", "mpi4py"]


def svg_chart(bars, path):
    """A horizontal bar chart of the ratios (log scale): one bar per workload and pool."""
    import math
    if not bars:
        return
    colors = {"multiprocessing": "#4e79a7", "ProcessPoolExecutor": "#f28e2b", "mpire": "#59a14f",
              "loky": "#e15759", "trio_parallel": "#b07aa1"}
    row_h, left, width = 16, 330, 420
    top = 40
    height = top + row_h * len(bars) + 40
    vmax = max(r for _, _, r in bars)
    scale = lambda r: width * math.log10(max(r, 1.0)) / math.log10(max(vmax, 10.0))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="10" y="20" font-size="14">How many times better SwiftPool is (log scale; 1 = equal)</text>']
    for i, (label, pool, r) in enumerate(bars):
        y = top + i * row_h
        out.append(f'<text x="{left - 6}" y="{y + 11}" text-anchor="end">{label} vs {pool}</text>')
        out.append(f'<rect x="{left}" y="{y + 2}" width="{max(1.0, scale(r)):.1f}" height="{row_h - 4}" '
                   f'fill="{colors.get(pool, "#999")}"/>')
        out.append(f'<text x="{left + max(1.0, scale(r)) + 4:.1f}" y="{y + 11}">×{r:,.1f}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    behaviours, settings = {}, {}
    ours = read(sys.argv[1], behaviours, settings)
    theirs = read(sys.argv[2], behaviours, settings)
    command = sys.argv[3]
    bars = []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pools = [p for p in POOLS if any(k.endswith("_" + p) for k in theirs)]
    runs = sorted({len(r["runs"]) for r in list(ours.values()) + list(theirs.values())})
    print(f"SwiftPool benchmark — {when}, commit {commit or 'unknown'}, "
          f"{os.cpu_count()} CPUs ({cpu_model()}), 2 workers unless said.")
    print(f"Reproduce: `{command}`. Every figure is the median of {'/'.join(map(str, runs))} runs "
          "(statistics.median, the same for every pool); [min..max] is the spread; "
          "×N = how many times better SwiftPool is than that pool, measured in this same run. "
          "Every run's results are checked. Python pools run Python functions, the C-API rows C functions.\n")
    head = "| workload | target | met | SwiftPool | " + " | ".join(pools) + " |"
    print(head)
    print("|" + "---|" * (4 + len(pools)))
    out = {"commit": commit, "when": when, "cpus": os.cpu_count(), "cpu": cpu_model(),
           "command": command, "swiftpool": ours, "python": theirs, "settings": settings, "targets": {}}
    unmet = []
    for key, prefix, label, higher, target in ROWS:
        if key not in ours:
            continue
        o = ours[key]
        cells = [f"{human(o['median'], o['unit'])} [{human(o['min'], o['unit'])}..{human(o['max'], o['unit'])}]"]
        ratio_vs_mp = None
        ratios = {}
        for p in pools:
            t = theirs.get(f"{prefix}_{p}")
            if not t:
                cells.append("—")
                continue
            ratio = o["median"] / t["median"] if higher else t["median"] / o["median"]
            ratios[p] = ratio
            if p == "multiprocessing":
                ratio_vs_mp = ratio
            if key in CHART:
                bars.append((CHART[key], p, ratio))
            how = settings.get(f"{prefix}_{p}")
            note = f"; {how.split(': ')[-1]}" if how else ""
            cells.append(f"{human(t['median'], t['unit'])} (×{ratio:,.0f}{note})" if ratio >= 10
                         else f"{human(t['median'], t['unit'])} (×{ratio:.1f}{note})")
        met = target_met(target, o["median"], higher, ratio_vs_mp, ours, ratios) if target else None
        mark = "" if not target else ("met" if met else "n/a" if met is None else "**NOT MET**")
        if target:
            out["targets"][key] = {"target": target_text(target, o["unit"], higher), "met": met}
            if met is False:
                unmet.append(label)
        print(f"| {label} | {target_text(target, o['unit'], higher)} | {mark} | " + " | ".join(cells) + " |")
    print(f"\nTargets: {sum(1 for t in out['targets'].values() if t['met'])} of {len(out['targets'])} met"
          + (f"; not met: {'; '.join(unmet)}" if unmet else "") + ".")
    if settings:
        print("\nPython chunk sizes: each pool ran cpu, pareto, one-slow and skew with its default, with chunks of 1 and with "
              "multiprocessing's automatic size; the table shows its best, named in the cell.")
    if behaviours:
        print("\n| behaviour | pool | what happens |")
        print("|---|---|---|")
        for workload in ("crash", "crash_mpi", "orphans"):
            for pool, text in behaviours.get(workload, {}).items():
                print(f"| {workload} | {pool} | {text} |")
        out["behaviours"] = behaviours
    os.makedirs("bench-results", exist_ok=True)
    svg_chart(bars, os.path.join("bench-results", "ratios.svg"))
    print("\nChart of the ratios: bench-results/ratios.svg")
    path = os.path.join("bench-results", f"bench-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"\nRaw figures: {path}")


if __name__ == "__main__":
    main()
