#!/usr/bin/env python3
"""Per-kernel table from the CSV that Nsight Compute writes (scripts/profile.sh runs it).

Input: the log of
    ncu --csv --print-units base --print-kernel-base function --log-file FILE \\
        --metrics gpu__time_duration.sum,dram__bytes.sum.per_second,\\
sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active ...
i.e. ncu's default "details" page as CSV: a header row
    "ID","Process ID","Process Name","Host Name","Kernel Name",...,"Metric Name","Metric Unit","Metric Value"
then one row per metric per profiled launch. ncu's own "==PROF==" / "==WARNING==" lines may be mixed
in and are skipped. Older ncu versions add "Kernel Time" and lack "Block Size"/"Grid Size"; either
layout works, as do scaled units (usecond, Gbyte/second) and thousands separators ("1,234.5").

Output: a markdown table, heaviest kernel first: kernel, calls (and calls/step with --steps), mean
duration in microseconds, summed duration, share of the summed duration, DRAM throughput in GB/s,
SM throughput in % of peak and achieved occupancy (resident warps in % of the SM's maximum: compare
with the theoretical occupancy bench/kernel_resources.sh computes), each weighted by duration over
the launches that report it ("n/a" for a CSV without that metric). It is
printed and, with --out, written to a file. With --by-grid, launches of one kernel with different
grid or block sizes are separate rows (a layer per row, as far as shapes differ).

ncu replays each kernel by itself, with caches flushed and clocks locked to base by default, so
these durations are per kernel in isolation; the step time comes from `convnet train --timing` or
Nsight Systems.
"""
import argparse
import csv
import re
import sys

TIME = "gpu__time_duration.sum"
DRAM = "dram__bytes.sum.per_second"
SM = "sm__throughput.avg.pct_of_peak_sustained_elapsed"
OCC = "sm__warps_active.avg.pct_of_peak_sustained_active"  # achieved occupancy

TIME_UNITS = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3,
              "second": 1e6, "s": 1e6}
PREFIX = {"": 1.0, "K": 1e3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
RATE_UNIT = re.compile(r"^([KkMGTP]?)(?:byte|B)/(?:second|s)$")


class CsvError(Exception):
    pass


def number(text, where):
    """A metric value as float; None for n/a. Thousands separators are dropped."""
    text = text.strip()
    if text in ("", "n/a", "N/A"):
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        raise CsvError(f"{where}: metric value '{text}' is not a number")


def in_unit(metric, unit, value, where):
    """The value in the table's units: microseconds, GB/s, percent."""
    if value is None:
        return None
    if metric == TIME:
        if unit not in TIME_UNITS:
            raise CsvError(f"{where}: unknown time unit '{unit}' for {metric}")
        return value * TIME_UNITS[unit]
    if metric == DRAM:
        m = RATE_UNIT.match(unit)
        if not m:
            raise CsvError(f"{where}: unknown rate unit '{unit}' for {metric}")
        return value * PREFIX[m.group(1)] / 1e9
    if unit != "%":
        raise CsvError(f"{where}: expected unit '%' for {metric}, found '{unit}'")
    return value


def launches(path):
    """{launch key: {"kernel", "grid", "block", metric: value}} in file order."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    header, out = None, {}
    for lineno, line in enumerate(lines, 1):
        if not line.startswith('"'):
            continue  # ==PROF== / ==WARNING== lines, blank lines
        row = next(csv.reader([line]))
        where = f"{path}:{lineno}"
        if header is None:
            if {"ID", "Kernel Name", "Metric Name", "Metric Unit", "Metric Value"} <= set(row):
                header = row
            continue
        if len(row) != len(header):
            raise CsvError(f"{where}: {len(row)} fields, the header has {len(header)}")
        r = dict(zip(header, row))
        key = (r.get("Process ID", ""), r["ID"])
        launch = out.setdefault(key, {"kernel": r["Kernel Name"], "grid": r.get("Grid Size", ""),
                                      "block": r.get("Block Size", "")})
        metric = r["Metric Name"]
        if metric in (TIME, DRAM, SM, OCC):
            launch[metric] = in_unit(metric, r["Metric Unit"].strip(), number(r["Metric Value"], where), where)
    if header is None:
        raise CsvError(f"{path}: no ncu --csv header (\"ID\",...,\"Kernel Name\",...,\"Metric Name\","
                       f"\"Metric Unit\",\"Metric Value\"); was ncu run with --csv?")
    return list(out.values())


def aggregate(rows, by_grid):
    """Per kernel (or kernel and launch shape): calls, summed µs, duration-weighted DRAM, SM, occupancy."""
    kernels = {}
    for launch in rows:
        duration = launch.get(TIME)
        if duration is None:
            raise CsvError(f"kernel {launch['kernel']}: a launch without {TIME}")
        name = launch["kernel"]
        if by_grid and launch["grid"]:
            name += f" grid {launch['grid']} block {launch['block']}"
        k = kernels.setdefault(name, {"calls": 0, "us": 0.0, DRAM: [0.0, 0.0], SM: [0.0, 0.0], OCC: [0.0, 0.0]})
        k["calls"] += 1
        k["us"] += duration
        for metric in (DRAM, SM, OCC):
            if launch.get(metric) is not None:
                k[metric][0] += launch[metric] * duration
                k[metric][1] += duration
    return kernels


def weighted(pair):
    return f"{pair[0] / pair[1]:.1f}" if pair[1] > 0 else "n/a"


def table(kernels, steps, source):
    total = sum(k["us"] for k in kernels.values())
    calls = sum(k["calls"] for k in kernels.values())
    per_step = steps is not None
    head = ["kernel", "calls"] + (["calls/step"] if per_step else []) + \
        ["mean µs", "total µs", "share", "DRAM GB/s", "SM %", "occupancy %"]
    lines = [f"Kernels profiled by Nsight Compute: {calls} launches, {total:.1f} µs in all"
             + (f", {steps} steps" if per_step else "") + f" ({source})", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|"]
    for name, k in sorted(kernels.items(), key=lambda item: (-item[1]["us"], item[0])):
        cells = [name.replace("|", "\\|"), str(k["calls"])]
        cells += [f"{k['calls'] / steps:g}"] if per_step else []
        share = 100.0 * k["us"] / total if total > 0 else 0.0
        cells += [f"{k['us'] / k['calls']:.2f}", f"{k['us']:.1f}", f"{share:.1f}%", weighted(k[DRAM]),
                  weighted(k[SM]), weighted(k[OCC])]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**all kernels**", str(calls)] + ([f"{calls / steps:g}"] if per_step else [])
    cells += ["", f"{total:.1f}", "100.0%" if total > 0 else "0.0%", "", "", ""]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("csv", help="the file ncu --csv --log-file wrote")
    p.add_argument("--steps", type=int, help="training steps profiled (adds a calls/step column)")
    p.add_argument("--out", help="also write the table to this file")
    p.add_argument("--by-grid", action="store_true", help="one row per kernel and launch shape")
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        p.error("--steps: must be at least 1")
    try:
        rows = launches(args.csv)
        if not rows:
            raise CsvError(f"{args.csv}: no profiled launches (did the run reach cudaProfilerStart?)")
        text = table(aggregate(rows, args.by_grid), args.steps, args.csv)
    except (OSError, CsvError) as e:
        print(f"ncu_table.py: error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
