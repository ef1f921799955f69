"""What the side-by-side benchmark's Python trainers share: MNIST from IDX files, the Keras split,
and the one JSON result line every row of bench/side_by_side.sh is built from.

MNIST: the four IDX files in a folder, raw or gzipped, named either way the convnet reader accepts
(`train-images-idx3-ubyte[.gz]` or `train-images.idx3-ubyte[.gz]`); read with gzip + struct +
numpy only, so no framework's downloader (which needs the network) is involved. Images come back
as uint8 (N, 28, 28), labels as uint8 (N,).

Split: the last `round(n * val_split)` training images validate, taken before any shuffling, as
Keras' `validation_split` does (and as `convnet train` does: host/trainer.cpp make_split).

Result line (one JSON object on stdout, the last line a trainer prints): the fields listed in
result_line(); times in seconds. "Steady state" is the median over epochs 2..E, so the first epoch
(CUDA/cuDNN/JIT warm-up, torch.compile's compilation) is excluded from it and reported on its own.
"""
import gzip
import json
import os
import statistics
import struct
import sys

import numpy as np

IDX_NAMES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


class BenchError(Exception):
    """A problem the user can fix (missing file, bad flag); printed as one line, exit code 2."""


def _find(folder, names):
    for name in names:
        for suffix in (".gz", ""):
            path = os.path.join(folder, name + suffix)
            if os.path.isfile(path):
                return path
    raise BenchError(f"{folder}: no {names[0]}[.gz] (set MNIST_DIR or --data to the MNIST folder)")


def read_idx(path):
    """One IDX file (magic 0x0000 0x08 D, D big-endian dimensions, uint8 data) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise BenchError(f"{path}: {len(data)} bytes, too short for an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        raise BenchError(f"{path}: not a uint8 IDX file of 1 or 3 dimensions (header {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    want = int(np.prod(dims))
    if len(body) != want:
        raise BenchError(f"{path}: header says {want} bytes of data for {dims}, found {len(body)}")
    return np.frombuffer(bytearray(body), dtype=np.uint8).reshape(dims)  # writable: torch.from_numpy warns otherwise


def read_mnist(folder):
    """{train_images, train_labels, test_images, test_labels} from `folder`."""
    if not folder:
        raise BenchError("no MNIST folder: pass --data DIR or set MNIST_DIR")
    out = {key: read_idx(_find(folder, names)) for key, names in IDX_NAMES.items()}
    for part in ("train", "test"):
        if len(out[part + "_images"]) != len(out[part + "_labels"]):
            raise BenchError(f"{folder}: {part} images and labels differ in count")
    return out


def keras_split(n, val_split, limit_train=0):
    """(train_count, val_first, val_count) as Keras' validation_split and convnet's make_split."""
    split_at = int(round(n * (1.0 - val_split)))
    train = min(limit_train, split_at) if limit_train > 0 else split_at
    return train, split_at, n - split_at


def steady_state(values):
    """Median of epochs 2..E; with a single epoch, that epoch (the caller says it includes warm-up)."""
    return statistics.median(values[1:] if len(values) > 1 else values)


def result_line(*, row, framework, device, batch, seed, epochs, train_images, val_images, test_images,
                epoch_seconds, train_seconds, val_accuracy, test_accuracy, test_loss, recipe_seconds,
                note="", extra=None):
    """The JSON result of one run. epoch_seconds: each epoch's training steps plus its validation
    pass; train_seconds: the training steps alone (images/s is computed from these). extra: more
    fields of the script's own, after these."""
    steady_epoch = steady_state(epoch_seconds)
    steady_train = steady_state(train_seconds)
    return json.dumps({
        "row": row, "framework": framework, "device": device, "batch": batch, "seed": seed,
        "epochs": epochs, "train_images": train_images, "val_images": val_images,
        "test_images": test_images,
        "epoch_seconds": [round(s, 6) for s in epoch_seconds],
        "train_seconds": [round(s, 6) for s in train_seconds],
        "steady_ms_per_epoch": round(steady_epoch * 1e3, 3),
        "images_per_second": round(train_images / steady_train, 1) if steady_train > 0 else None,
        "first_epoch_seconds": round(epoch_seconds[0], 6),
        "steady_includes_warmup": len(epoch_seconds) < 2,
        "final_val_accuracy": val_accuracy[-1] if val_accuracy else None,
        "test_accuracy": test_accuracy, "test_loss": test_loss,
        "recipe_seconds": round(recipe_seconds, 6), "note": note, **(extra or {}),
    })


def fail(prog, message, code=2):
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def run_main(prog, parse_args, run, argv, not_measurable):
    """A benchmark script's main: print run(args)'s result line, or one error line and an exit code:
    2 for a BenchError (bad input), 3 when the row cannot be measured here (not_measurable:
    (exception type, message prefix) pairs, e.g. an ImportError of the framework)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print(run(args), flush=True)
    except BenchError as e:
        return fail(prog, str(e))
    except tuple(kind for kind, _ in not_measurable) as e:
        prefix = next(p for kind, p in not_measurable if isinstance(e, kind))
        return fail(prog, f"{prefix}{e}", 3)
    return 0
