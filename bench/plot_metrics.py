#!/usr/bin/env python3
"""Plot the loss and accuracy curves of one or more `convnet train --log` files into a PNG.

    bench/plot_metrics.py LOG [LOG ...] --out curves.png [--labels NAME [NAME ...]]

Each LOG holds one JSON object per line (host/train_log.h): epoch, step, loss, accuracy, val_loss,
val_accuracy, seconds, images_per_second, learning_rate, device; null stands for "none" (no
validation split) or for a loss that was NaN/Inf. The figure has two panels, loss and accuracy
against epoch; each run gets one colour, training a solid line and validation a dashed one. A run
is labelled by its file name without extension unless --labels names them.

A run resumed from an earlier checkpoint may log an epoch again (kill -9 after epoch 5, resume from
the checkpoint of epoch 4): a line for epoch E replaces every earlier line for epochs >= E, so the
curve is the one the finished run followed.

Every line is checked before anything is drawn; a malformed one ends the script with exit code 2
and one line "plot_metrics.py: error: FILE:LINE: what is wrong". Needs matplotlib
(pip install matplotlib, or the Debian package python3-matplotlib) only to draw.
"""
import argparse
import json
import os
import sys

NUMBER_FIELDS = ("loss", "accuracy", "val_loss", "val_accuracy")


class LogError(Exception):
    pass


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON (convnet writes null for a NaN or infinite value)")


def _check_entry(obj, where):
    if not isinstance(obj, dict):
        raise LogError(f"{where}: expected a JSON object per line, got {type(obj).__name__}")
    epoch = obj.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise LogError(f"{where}: 'epoch' must be a positive integer, got {epoch!r}")
    for key in ("loss", "accuracy"):
        if key not in obj:
            raise LogError(f"{where}: missing field '{key}'")
    for key in NUMBER_FIELDS:
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise LogError(f"{where}: '{key}' must be a number or null, got {value!r}")


def read_log(path):
    """The epochs of one log as a list of dicts, in epoch order, later lines superseding."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except UnicodeDecodeError:
        raise LogError(f"{path}: not a text file (is it a 'convnet train --log' file?)")
    except OSError as e:
        raise LogError(f"{path}: cannot read: {e.strerror}")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except ValueError as e:
            raise LogError(f"{where}: not valid JSON: {e}")
        _check_entry(obj, where)
        rows = [r for r in rows if r["epoch"] < obj["epoch"]]
        rows.append(obj)
    if not rows:
        raise LogError(f"{path}: no epoch lines (is it a 'convnet train --log' file?)")
    return rows


def series(rows, key):
    """(epochs, values) of one field, leaving out nulls."""
    points = [(r["epoch"], r.get(key)) for r in rows if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot(runs, out):
    try:
        import matplotlib
    except ImportError:
        raise LogError("matplotlib is not installed (pip install matplotlib, or apt install python3-matplotlib)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, rows) in enumerate(runs):
        colour = colours[i % len(colours)]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            x, y = series(rows, key)
            ax.plot(x, y, color=colour, linestyle="-", marker="o", markersize=3, label=f"{label} train")
            x, y = series(rows, "val_" + key)
            if x:
                ax.plot(x, y, color=colour, linestyle="--", marker="s", markersize=3, label=f"{label} validation")
    for ax, title in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def check_out(out):
    """Refuses an --out that matplotlib would not write as given (it appends .png to a name without
    an extension and refuses other formats' names or writes them as that format), before any work."""
    if not out.lower().endswith(".png"):
        raise LogError(f"--out {out}: the figure is a PNG; give a path ending in .png")
    if os.path.isdir(out):
        raise LogError(f"--out {out}: is a folder; give a path ending in .png")
    folder = os.path.dirname(out) or "."
    if not os.path.isdir(folder):
        raise LogError(f"--out {out}: folder {folder} does not exist")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot_metrics.py",
                                     description="Plot loss and accuracy curves from convnet train --log files.")
    parser.add_argument("logs", nargs="+", metavar="LOG", help="JSON Lines files written by convnet train --log")
    parser.add_argument("--out", default="curves.png", help="PNG to write (default curves.png)")
    parser.add_argument("--labels", nargs="+", metavar="NAME", help="one legend name per LOG (default: file stems)")
    args = parser.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.logs):
        parser.error(f"--labels: {len(args.labels)} names for {len(args.logs)} logs")
    labels = args.labels or [os.path.splitext(os.path.basename(p))[0] for p in args.logs]
    try:
        check_out(args.out)
        runs = [(label, read_log(path)) for label, path in zip(labels, args.logs)]
        plot(runs, args.out)
    except LogError as e:
        print(f"plot_metrics.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"plot_metrics.py: error: {args.out}: cannot write: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(runs)} run(s), " +
          ", ".join(f"{label} {len(rows)} epochs" for label, rows in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
