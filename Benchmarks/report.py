"""Reads the figures that bench_core (SwiftPool's C API) and bench_pools.py (the Python
pools) printed in one run, and prints the markdown table: SwiftPool's median, each
Python pool's median, and the ratio (how many times better SwiftPool is), with the
machine, the commit and the command. Writes the raw figures to bench-results/.

usage: report.py SWIFTPOOL.tsv PYTHON.tsv COMMAND   (SWIFTPOOL.tsv: the C and Swift figures)
"""
import datetime
import json
import os
import platform
import subprocess
import sys


def read(path, behaviours):
    rows = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "#behaviour" and len(parts) == 4:
                behaviours.setdefault(parts[1], {})[parts[2]] = parts[3]
            elif len(parts) == 5:
                rows[parts[0]] = {"median": float(parts[1]), "min": float(parts[2]),
                                  "max": float(parts[3]), "unit": parts[4]}
    return rows


def human(v, unit):
    if unit == "tasks/s":
        return f"{v / 1e6:.1f} M/s"
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


# (SwiftPool figure, python figure prefix, label, higher is better, target from the issues)
ROWS = [
    ("tiny_swift", "tiny", "tiny: Swift `map { $0 * $0 }` over 1M Int, fresh workers per call", True, "≥ 50 M/s"),
    ("tiny_swift_keepalive", "tiny", "tiny: Swift, keep-alive, registered function", True, ""),
    ("latency_swift_p50", "latency_p50", "latency: Swift `apply` p50, warm (keep-alive)", False, "≤ 5 µs"),
    ("latency_swift_p99", "latency_p99", "latency: Swift `apply` p99, warm (keep-alive)", False, ""),
    ("cpu_5ms_swift", "cpu_5ms", "cpu: 64 tasks of 5 ms, parallel efficiency", True, "≥ 0.97"),
    ("cpu_50us_swift", "cpu_50us", "cpu: 20,000 tasks of 50 µs, parallel efficiency", True, "≥ 0.90"),
    ("keepalive_off_swift", "keepalive_off", "keepalive: 10 maps × 1,000, 200 ms init, keep-alive off", False, ""),
    ("keepalive_on_swift", "keepalive_on", "keepalive: same, keep-alive on", False, "≤ 250 ms"),
    ("startup_swift", "startup", "startup: 2-worker pool, one task, shut down", False, "< 5 ms"),
    ("skew_swift", "skew", "skew: 2,000 tasks, 98% 10 µs, 2% 10 ms: makespan", False, ""),
    ("payload_c", "payload", "payload: 64 × 1 MiB doubles in, ×2, out (C API bytes form)", True, "≥ 5× multiprocessing"),
    ("shared_swift", "shared", "shared: 1 GiB shared array summed in 16 slices", False, "no copies"),
    ("shared_128MiB_swift", "shared_128MiB", "shared: 128 MiB shared array summed in 16 slices", False, "no copies"),
    ("tiny_c_direct", "tiny", "tiny-c: map x*x over 1M int64, direct call (caller arrays)", True, "≥ 100 M/s"),
    ("tiny_c_direct_shared", "tiny", "tiny-c: same, buffers in the shared arena (zero-copy)", True, "≥ 100 M/s"),
    ("tiny_c_ffi", "tiny", "tiny-c: map x*x over 1M int64 through libffi", True, "≥ 40 M/s"),
    ("tiny_c_ffi_shared", "tiny", "tiny-c: libffi, shared arena", True, "≥ 40 M/s"),
    ("tiny_c_direct_4_workers", "tiny", "tiny-c: direct, 4 workers on 2 cores", True, "no collapse"),
    ("latency_p50", "latency_p50", "latency: apply round trip p50, warm", False, "≤ 2 µs"),
    ("latency_p99", "latency_p99", "latency: apply round trip p99, warm", False, ""),
    ("idle_latency_p50", "idle_latency_p50", "idle-latency: p50, 1 ms idle between calls", False, "≤ 60 µs"),
    ("idle_latency_p99", "idle_latency_p99", "idle-latency: p99, 1 ms idle between calls", False, ""),
]
# The rows the chart shows, with their short labels.
CHART = {"tiny_swift": "tiny (Swift)", "tiny_c_direct": "tiny-c (C API)", "latency_swift_p50": "latency p50 (Swift)",
         "latency_p50": "latency p50 (C API)", "cpu_50us_swift": "cpu 50 µs", "payload_c": "payload",
         "skew_swift": "skew", "startup_swift": "startup"}
POOLS = ["multiprocessing", "ProcessPoolExecutor", "mpire", "loky", "trio_parallel"]


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
    behaviours = {}
    ours, theirs, command = read(sys.argv[1], behaviours), read(sys.argv[2], behaviours), sys.argv[3]
    bars = []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pools = [p for p in POOLS if any(k.endswith("_" + p) for k in theirs)]
    print(f"SwiftPool benchmark — {when}, commit {commit or 'unknown'}, "
          f"{os.cpu_count()} CPUs ({cpu_model()}), 2 workers unless said.")
    print(f"Reproduce: `{command}`. Medians of several runs; [min..max] is the spread; "
          "×N = how many times better SwiftPool is than that pool, measured in this same run.\n")
    head = "| workload | target | SwiftPool | " + " | ".join(pools) + " |"
    print(head)
    print("|" + "---|" * (3 + len(pools)))
    out = {"commit": commit, "when": when, "cpus": os.cpu_count(), "cpu": cpu_model(),
           "command": command, "swiftpool": ours, "python": theirs}
    for key, prefix, label, higher, target in ROWS:
        if key not in ours:
            continue
        o = ours[key]
        cells = [f"{human(o['median'], o['unit'])} [{human(o['min'], o['unit'])}..{human(o['max'], o['unit'])}]"]
        for p in pools:
            t = theirs.get(f"{prefix}_{p}")
            if not t:
                cells.append("—")
                continue
            ratio = o["median"] / t["median"] if higher else t["median"] / o["median"]
            if key in CHART:
                bars.append((CHART[key], p, ratio))
            cells.append(f"{human(t['median'], t['unit'])} (×{ratio:,.0f})" if ratio >= 10
                         else f"{human(t['median'], t['unit'])} (×{ratio:.1f})")
        print(f"| {label} | {target} | " + " | ".join(cells) + " |")
    if behaviours:
        print("\n| behaviour | pool | what happens |")
        print("|---|---|---|")
        for workload in ("crash", "orphans"):
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
