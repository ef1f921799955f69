#!/usr/bin/env python3
"""Helpers of bench/side_by_side.sh: results as JSON lines, the FP32 floor, the table.

    side_by_side.py convnet-result --row R --command C --batch B --seed S --log LOG --stdout FILE
        one JSON result line (bench_common.result_line's fields) from a `convnet train --log` file
        and the run's stdout (convnet tests on the whole test set; test_images stays null)
    side_by_side.py python-result --command C --stdout FILE
        the last JSON line of torch_convnet.py's or keras_seed.py's output, with its command
    side_by_side.py not-measured --row R --command C --batch B --seed S --reason TEXT
        the JSON line of a run that did not happen or did not finish, and why
    side_by_side.py meta --date D --device-name N --commit C [--convnet BIN] [--dry-run]
        the opening line of a results file: where and when it ran, and the GPU's FP32 peak: SM count
        × max SM clock × 128 FP32 lanes × 2 (an FMA is two FLOPs), SMs from `convnet devices`, else
        torch, the clock from nvidia-smi clocks.max.sm; FP32_PEAK_TFLOPS=X overrides both
    side_by_side.py table RESULTS.jsonl [--append]
        the table on stdout; with --append (refused for a dry run's results) every row also goes to
        bench/RESULTS.md, section SECTION, through append_row.py. A results file fetched from the GPU
        machine's $OUT (side_by_side_results.jsonl) is appended here the same way (the device's own
        copy of RESULTS.md stays there)

Uses the standard library only, so it runs where the trainers' frameworks are not installed.

Table columns, per (row, batch) over its seeds: steady ms/epoch (each seed's median over epochs
2..E of training + validation; the median over seeds, with the range), images/s (training images
÷ the median training-only time), recipe total s (mean; from data in host memory to the test
accuracy, warm-up and compilation included), test accuracy mean ± sd (sample sd), × FP32 floor
(steady epoch ÷ the training FLOPs of one epoch at the peak: 16.15 MFLOP per image forward and
backward × training images ÷ peak), and the speed-up against the PyTorch rows of the same batch.
A row with no measured seed says "not measured (why)"; seeds that failed are named in its note.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

PROG = "side_by_side.py"
SECTION = "Side-by-side: this trainer, PyTorch and Keras 3 on JAX, one GPU"
MFLOP_PER_IMAGE = 16.15  # forward + backward of the seed network, per training image (issue #6)
FP32_LANES_PER_SM = 128
HEADER = ("date|device|commit|command|row|batch|seeds|steady ms/epoch (median, range)|images/s|"
          "recipe total s (mean)|test accuracy (mean ± sd)|× FP32 floor|vs PyTorch eager|vs torch.compile|"
          "first epoch s (mean)|note")
TORCH_EAGER, TORCH_COMPILE = "pytorch eager", "pytorch compile"
TARGETS = "targets (batch 128): <= 25 ms/epoch, < 0.5 s recipe, >= 10x PyTorch eager, >= 3x torch.compile"


class Usage(Exception):
    pass


# ---- results -------------------------------------------------------------------------------------

def _numbers(path, key):
    values = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                entry = json.loads(line)
                if entry.get(key) is None:
                    raise Usage(f"{path}:{n}: no {key}")
                values.append(entry)
    return values


def _stdout_value(text, pattern, path):
    m = re.search(pattern, text, re.M)
    if not m:
        raise Usage(f"{path}: no line matching {pattern!r}")
    return m.group(1)


def python_result(a):
    """The last JSON line a Python trainer printed, with the command that ran it."""
    with open(a.stdout) as f:
        lines = [line for line in f if line.startswith("{")]
    if not lines:
        raise Usage(f"{a.stdout}: no JSON result line")
    result = json.loads(lines[-1])
    result["command"] = a.command
    return result


def convnet_result(a):
    """convnet's --log lines (seconds: steps + validation; images_per_second: steps alone) and its
    stdout (images, test accuracy and loss, Total time = train_model's whole run)."""
    epochs = _numbers(a.log, "seconds")
    with open(a.stdout) as f:
        text = f.read()
    train = int(_stdout_value(text, r"^Training on (\d+) images", a.stdout))
    val = int(_stdout_value(text, r"^Training on \d+ images, validating on (\d+)", a.stdout))
    epoch_s = [e["seconds"] for e in epochs]
    train_s = [train / e["images_per_second"] for e in epochs]
    steady = statistics.median(epoch_s[1:] if len(epoch_s) > 1 else epoch_s)
    steady_train = statistics.median(train_s[1:] if len(train_s) > 1 else train_s)
    return {
        "row": a.row, "command": a.command, "framework": "convnet", "device": epochs[-1].get("device"),
        "batch": a.batch, "seed": a.seed, "epochs": len(epochs), "train_images": train, "val_images": val,
        "test_images": None, "epoch_seconds": epoch_s, "train_seconds": [round(s, 6) for s in train_s],
        "steady_ms_per_epoch": round(steady * 1e3, 3), "images_per_second": round(train / steady_train, 1),
        "first_epoch_seconds": epoch_s[0], "steady_includes_warmup": len(epoch_s) < 2,
        "final_val_accuracy": epochs[-1].get("val_accuracy"),
        "test_accuracy": float(_stdout_value(text, r"^Test accuracy: ([0-9.]+)", a.stdout)),
        "test_loss": float(_stdout_value(text, r"^Test loss: ([0-9.]+)", a.stdout)),
        "recipe_seconds": float(_stdout_value(text, r"^Total time: ([0-9.]+) s", a.stdout)), "note": a.note,
    }


# ---- FP32 peak -----------------------------------------------------------------------------------

def _run(cmd):
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def sm_count(convnet):
    text = _run([convnet, "devices"]) if convnet else None
    m = re.search(r"^device 0: .*?, (\d+) SMs,", text or "", re.M)
    if m:
        return int(m.group(1)), "convnet devices"
    text = _run([sys.executable, "-c", "import torch; print(torch.cuda.get_device_properties(0).multi_processor_count)"])
    if text and text.strip().isdigit():
        return int(text.strip()), "torch multi_processor_count"
    return None, "no SM count (convnet devices and torch found no GPU)"


def peak(convnet):
    forced = os.environ.get("FP32_PEAK_TFLOPS")
    if forced:
        return {"tflops": float(forced), "text": f"FP32 peak {float(forced):.1f} TFLOP/s from FP32_PEAK_TFLOPS"}
    sms, sm_source = sm_count(convnet)
    clock = _run(["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"])
    clock = clock.strip().splitlines()[0].strip() if clock and clock.strip() else ""
    if not sms or not clock.replace(".", "").isdigit():
        return {"tflops": None, "text": f"no FP32 peak: {sm_source}; SM clock {clock or 'unavailable (nvidia-smi)'}"}
    tflops = sms * float(clock) * 1e6 * FP32_LANES_PER_SM * 2 / 1e12
    return {"tflops": tflops, "text": f"FP32 peak {tflops:.1f} TFLOP/s = {sms} SMs ({sm_source}) x {clock} MHz "
                                      f"(nvidia-smi clocks.max.sm) x {FP32_LANES_PER_SM} lanes x 2"}


def floor_ms(train_images, tflops):
    return MFLOP_PER_IMAGE * 1e6 * train_images / (tflops * 1e12) * 1e3


# ---- table ---------------------------------------------------------------------------------------

def _fmt(x, digits):
    return f"{x:.{digits}f}"


SKIPPED_AFTER = "first run failed: "  # side_by_side.sh's prefix for the runs of a row it stopped trying


def summarise(runs, tflops):
    """{(row, batch): cells} in first-seen order; runs are result or not-measured lines."""
    groups = {}
    for r in runs:
        groups.setdefault((r["row"], r["batch"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if "not_measured" not in r]
        failed = [r for r in rs if "not_measured" in r]
        cell = {"row": key[0], "batch": key[1], "command": rs[0].get("command", ""), "measured": bool(ok)}
        notes = [f"seed {r['seed']} not measured ({r['not_measured']})" for r in failed]
        if not ok:
            reasons = {r["not_measured"] for r in failed}
            # The runs skipped after a failed first run repeat its reason behind "first run failed: ".
            reasons = sorted(x for x in reasons if not (x.startswith(SKIPPED_AFTER) and x[len(SKIPPED_AFTER):] in reasons))
            cell["not_measured"] = "; ".join(reasons)
            out[key] = cell
            continue
        steady = [r["steady_ms_per_epoch"] for r in ok]
        acc = [r["test_accuracy"] for r in ok]
        cell.update({
            "device": ok[0].get("device"), "seeds": [r["seed"] for r in ok], "steady_ms": statistics.median(steady),
            "steady_lo": min(steady), "steady_hi": max(steady),
            "images_per_second": statistics.median(r["images_per_second"] for r in ok),
            "recipe_s": statistics.mean(r["recipe_seconds"] for r in ok),
            "acc_mean": statistics.mean(acc), "acc_sd": statistics.stdev(acc) if len(acc) > 1 else None,
            "first_epoch_s": statistics.mean(r["first_epoch_seconds"] for r in ok),
            "train_images": ok[0]["train_images"],
        })
        if any(r.get("steady_includes_warmup") for r in ok):
            notes.append("one epoch only: steady state includes warm-up")
        notes += sorted({r["note"] for r in ok if r.get("note")})
        cell["floor_x"] = cell["steady_ms"] / floor_ms(cell["train_images"], tflops) if tflops else None
        cell["notes"] = notes
        out[key] = cell
    for (row, batch), cell in out.items():
        for ref, name in ((TORCH_EAGER, "vs_eager"), (TORCH_COMPILE, "vs_compile")):
            other = out.get((ref, batch))
            if cell["measured"] and other and other["measured"]:
                cell[name] = other["steady_ms"] / cell["steady_ms"]
            else:
                cell[name] = None
    return out


def cells(cell, date, device, commit):
    base = [date, device, commit, f"`{cell['command']}`", cell["row"], str(cell["batch"])]
    if not cell["measured"]:
        return base + ["—"] + [f"not measured ({cell['not_measured']})"] + ["not measured"] * 7 + [""]
    steady = _fmt(cell["steady_ms"], 1)
    if len(cell["seeds"]) > 1:
        steady += f" ({_fmt(cell['steady_lo'], 1)}–{_fmt(cell['steady_hi'], 1)})"
    acc = _fmt(cell["acc_mean"] * 100, 2) + "%"
    acc += f" ± {_fmt(cell['acc_sd'] * 100, 2)}" if cell["acc_sd"] is not None else " (one seed)"
    ratio = lambda x: f"{x:.2f}x" if x is not None else "not measured"
    floor = f"{cell['floor_x']:.2f}" if cell["floor_x"] is not None else "n/a (no GPU peak)"
    return base + [",".join(map(str, cell["seeds"])), steady, _fmt(cell["images_per_second"], 0),
                   _fmt(cell["recipe_s"], 3), acc, floor, ratio(cell["vs_eager"]), ratio(cell["vs_compile"]),
                   _fmt(cell["first_epoch_s"], 3), "; ".join(cell["notes"])]


def verdicts(summary):
    """The issue's targets, judged on the first convnet row at batch 128 (graphs on when present)."""
    mine = [c for (row, batch), c in summary.items() if row.startswith("convnet") and batch == 128 and c["measured"]]
    if not mine:
        return f"{TARGETS}: not measured (no convnet row at batch 128 was measured)"
    c = mine[0]
    judge = lambda ok, what: f"{what}: {'met' if ok else 'MISSED'}"
    parts = [judge(c["steady_ms"] <= 25, f"{c['steady_ms']:.1f} ms/epoch"),
             judge(c["recipe_s"] < 0.5, f"{c['recipe_s']:.3f} s recipe")]
    for name, want, label in (("vs_eager", 10, "PyTorch eager"), ("vs_compile", 3, "torch.compile")):
        parts.append(judge(c[name] >= want, f"{c[name]:.2f}x {label}") if c[name] is not None
                     else f"{label}: not measured")
    return f"{TARGETS} -- {c['row']}: " + ", ".join(parts)


def read_results(path):
    """(runs, meta) of a results file: its run lines, and its last meta line."""
    runs, meta = [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise Usage(f"{path}:{n}: not JSON: {e}") from None
            if "meta" in entry:
                meta = entry["meta"]
            elif not {"row", "batch", "seed"} <= entry.keys():
                raise Usage(f"{path}:{n}: a run line needs row, batch and seed")
            else:
                runs.append(entry)
    if not runs:
        raise Usage(f"{path}: no results")
    if meta is None:
        raise Usage(f"{path}: no meta line (side_by_side.sh writes it before the runs)")
    return runs, meta


def table(a):
    runs, meta = read_results(a.results)
    dry = meta.get("dry_run", True)
    if a.append and dry:
        raise Usage(f"{a.results}: a dry run's results are never appended to bench/RESULTS.md")
    pk = meta["peak"]
    summary = summarise(runs, pk["tflops"])
    rows = [cells(c, meta["date"], meta["device_name"], meta["commit"]) for c in summary.values()]
    header = HEADER.split("|")
    print(("DRY RUN (not for bench/RESULTS.md): " if dry else "") + f"{meta['device_name']}; " + pk["text"])
    images = next((c["train_images"] for c in summary.values() if c["measured"]), None)
    if pk["tflops"] and images:
        print(f"FP32 floor: {floor_ms(images, pk['tflops']):.2f} ms per epoch of {images} training images "
              f"({MFLOP_PER_IMAGE} MFLOP per image forward + backward / peak)")
    print("| " + " | ".join(header[4:]) + " |")
    print("|" + "---|" * (len(header) - 4))
    for r in rows:
        print("| " + " | ".join(r[4:]) + " |")
    print(("DRY RUN, not judged: " if dry else "") + verdicts(summary))
    if a.append:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "append_row.py")
        for r in rows:
            subprocess.run([sys.executable, script, SECTION, HEADER, "|".join(c.replace("|", "/") for c in r)],
                           check=True)
        print(f"appended {len(rows)} rows to bench/RESULTS.md, section \"{SECTION}\"")
    return 0


# ---- command line --------------------------------------------------------------------------------

def parse(argv):
    p = argparse.ArgumentParser(prog=PROG)
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("convnet-result", "not-measured"):
        s = sub.add_parser(name)
        s.add_argument("--row", required=True)
        s.add_argument("--command", required=True)
        s.add_argument("--batch", type=int, required=True)
        s.add_argument("--seed", type=int, required=True)
    c = sub.choices["convnet-result"]
    c.add_argument("--log", required=True)
    c.add_argument("--stdout", required=True)
    c.add_argument("--note", default="")
    sub.choices["not-measured"].add_argument("--reason", required=True)
    pr = sub.add_parser("python-result")
    pr.add_argument("--command", required=True)
    pr.add_argument("--stdout", required=True)
    m = sub.add_parser("meta")
    m.add_argument("--date", required=True)
    m.add_argument("--device-name", required=True)
    m.add_argument("--commit", required=True)
    m.add_argument("--convnet", default="")
    m.add_argument("--dry-run", action="store_true")
    t = sub.add_parser("table")
    t.add_argument("results")
    t.add_argument("--append", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    a = parse(sys.argv[1:] if argv is None else argv)
    try:
        if a.what == "convnet-result":
            print(json.dumps(convnet_result(a)))
        elif a.what == "python-result":
            print(json.dumps(python_result(a)))
        elif a.what == "not-measured":
            print(json.dumps({"row": a.row, "command": a.command, "batch": a.batch, "seed": a.seed,
                              "not_measured": a.reason}))
        elif a.what == "meta":
            print(json.dumps({"meta": {"date": a.date, "device_name": a.device_name, "commit": a.commit,
                                       "dry_run": a.dry_run, "peak": peak(a.convnet)}}))
        else:
            return table(a)
    except (Usage, OSError, ValueError, KeyError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
