#!/usr/bin/env python3
"""The seed's own Keras model code on Keras 3 with the JAX backend, for bench/side_by_side.sh.

    KERAS_BACKEND=jax bench/keras_seed.py [--batch-size 128] [--epochs 15] [--seed 1] [--data DIR]
                                          [--device auto|cuda|cpu] [--limit-train N] [--limit-eval N]
                                          [--tf32]

The seed (shared/seed/000_2a8655e449f5c886.txt, "Arquitetura da Rede Neural") names the model
layer by layer — keras.Input(shape=input_shape); Conv2D(32, kernel_size=(3, 3), activation="relu");
MaxPooling2D(pool_size=(2, 2)); Conv2D(64, (3, 3), relu); MaxPooling2D; Conv2D(64, (3, 3), relu)
(its prose says 96 filters, its code 64: 64 is what convnet's `seed` preset trains);
MaxPooling2D; Flatten(); Dropout(0.6); Dense(num_classes, activation="softmax") — and says it is
the Keras team's example (keras.io "Simple MNIST convnet"), whose preprocessing, compile and fit
calls are transcribed below unchanged: x/255 as float32 with a channel axis, to_categorical,
compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"]),
fit(batch_size=128, epochs=15, validation_split=0.1), evaluate(x_test, y_test, verbose=0).
Keras' defaults give the recipe: Glorot-uniform weights, zero biases, Adam 1e-3/0.9/0.999/1e-7.

What differs from the notebook, and why:
  - MNIST comes from the IDX files in --data / $MNIST_DIR (bench_common.py), not from
    keras.datasets.mnist.load_data(), which downloads (the GPU machine has no network);
  - fit(verbose=2): one line per epoch instead of a progress bar redrawn every step;
  - --limit-train/--limit-eval (dry runs only) pass validation_data explicitly, because
    validation_split over a cut training set would validate on other images than the full run;
  - strict FP32: JAX's default matmul/conv precision on a GPU is TF32; it is set to "highest"
    unless --tf32, as convnet and torch_convnet.py do.

Timing is a Keras callback with only epoch- and test-level hooks (a batch hook would make Keras
convert every step's logs and wait for the device): the training part of an epoch ends when
validation begins, after waiting for the model's variables (JAX dispatches asynchronously), and
the epoch ends at on_epoch_end, whose logs are host numbers. Output: one JSON line, last on stdout.

Keras is not in the GPU machine's Python; KERAS_WHEELS=DIR installs every wheel in DIR (made by
bench/keras_wheels.sh: keras, namex, optree, typing_extensions) with `pip install --no-index
--no-deps` into $KERAS_SITE (default /tmp/keras-site), which goes last on sys.path, so packages the
Python already has keep their versions. JAX itself is there; where it is not, this script
says how big its wheels are instead of measuring (exit 3).
"""
import argparse
import glob
import importlib
import os
import subprocess
import sys
import time

import bench_common

PROG = "keras_seed.py"
# `pip download` on 2026-11-28 (Python 3.11, Linux x86-64): jax 0.10.2 + jaxlib + jax-cuda13-plugin +
# jax-cuda13-pjrt + keras 3.15.1 and their pure dependencies. "[cuda13-local]" uses the machine's CUDA;
# "[cuda13]" brings CUDA, cuDNN and NCCL as wheels. keras + namex + optree (+ typing_extensions) alone: 2.9 MiB.
JAX_WHEELS_MIB = {"jax[cuda13-local]": 270, "jax[cuda13]": 2511, "jax[cuda12]": 3201}
CARRY_LIMIT_MIB = 64


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="The seed's Keras model on Keras 3 / JAX.")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", default=os.environ.get("MNIST_DIR", ""))
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--limit-train", type=int, default=0)
    p.add_argument("--limit-eval", type=int, default=0)
    p.add_argument("--tf32", action="store_true")
    a = p.parse_args(argv)
    if a.batch_size < 1 or a.epochs < 1 or a.limit_train < 0 or a.limit_eval < 0:
        p.error("--batch-size and --epochs must be >= 1, --limit-train and --limit-eval >= 0")
    return a


class NotMeasurable(Exception):
    """The row cannot be measured here (no JAX, no Keras, no GPU for JAX): exit code 3."""


def install_wheels():
    """KERAS_WHEELS=DIR: pip-install every wheel there into KERAS_SITE and put it last on sys.path,
    so that a package this Python already has (typing_extensions, say) keeps its own version and the
    wheels supply only what is missing."""
    folder = os.environ["KERAS_WHEELS"]
    wheels = sorted(glob.glob(os.path.join(folder, "*.whl")))
    if not wheels:
        raise NotMeasurable(f"KERAS_WHEELS={folder}: no .whl files there")
    site = os.environ.get("KERAS_SITE", "/tmp/keras-site")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--disable-pip-version-check", "--upgrade", "--target", site, "--find-links", folder] + wheels
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise NotMeasurable(f"installing {len(wheels)} wheels from {folder} failed: {last}")
    sys.path.append(site)
    importlib.invalidate_caches()


def import_error_text(e):
    """An ImportError's message, with optree's own error where Keras hid it: Keras says "you need to
    have `optree` installed" also when optree is there but cannot be imported (a dependency of its
    own missing, typing_extensions say)."""
    text = str(e)
    if "optree" in text:
        try:
            import optree  # noqa: F401
        except ImportError as inner:
            text += f" (importing optree: {inner})"
    return text


def import_stack(args):
    """(jax, keras) on the requested device, or NotMeasurable saying why not."""
    os.environ["KERAS_BACKEND"] = "jax"
    if args.device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    try:
        import jax
    except ImportError as e:
        sizes = ", ".join(f"{k} {v} MiB" for k, v in JAX_WHEELS_MIB.items())
        raise NotMeasurable(f"JAX is not installed ({e}); its wheels weigh {sizes}: over the "
                            f"{CARRY_LIMIT_MIB} MiB carry limit") from None
    jax.config.update("jax_default_matmul_precision", "tensorfloat32" if args.tf32 else "highest")
    if args.device == "cuda" and jax.default_backend() != "gpu":
        raise NotMeasurable(f"--device cuda: JAX's backend is {jax.default_backend()}, not gpu")
    try:
        try:
            import keras
        except ImportError:
            if not os.environ.get("KERAS_WHEELS"):
                raise
            install_wheels()
            import keras
    except ImportError as e:
        raise NotMeasurable(f"keras cannot be imported ({import_error_text(e)}); carry its wheels (2.9 MiB, "
                            "bench/keras_wheels.sh) and set KERAS_WHEELS") from None
    if keras.backend.backend() != "jax":
        raise NotMeasurable(f"Keras runs on {keras.backend.backend()}, not jax (KERAS_BACKEND set too late?)")
    return jax, keras


def seed_model(keras, input_shape, num_classes):
    """The seed's model, transcribed (see the module docstring)."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.6),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def epoch_timer(jax, keras):
    """A callback recording each epoch's seconds, training part and val_accuracy."""

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch, self.train, self.val_acc = [], [], []
            self._t0 = self._t1 = None

        def _wait(self):
            jax.block_until_ready([v.value for v in self.model.trainable_variables])

        def on_epoch_begin(self, epoch, logs=None):
            self._t0, self._t1 = time.perf_counter(), None

        def on_test_begin(self, logs=None):
            if self._t0 is not None and self._t1 is None:  # validation inside fit
                self._wait()
                self._t1 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if self._t1 is None:  # no validation this epoch
                self._wait()
                self._t1 = time.perf_counter()
            val = (logs or {}).get("val_accuracy")
            val = float(val) if val is not None else None  # a host number: validation has finished
            t2 = time.perf_counter()
            self.epoch.append(t2 - self._t0)
            self.train.append(self._t1 - self._t0)
            if val is not None:
                self.val_acc.append(round(val, 6))
            self._t0 = None

    return EpochTimer()


def run(args):
    data = bench_common.read_mnist(args.data)
    jax, keras = import_stack(args)
    t_recipe = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    num_classes, input_shape = 10, (28, 28, 1)
    x_train = data["train_images"].astype("float32") / 255  # the notebook's preprocessing
    x_test = data["test_images"].astype("float32") / 255
    x_train, x_test = x_train[..., None], x_test[..., None]  # np.expand_dims(x, -1)
    y_train = keras.utils.to_categorical(data["train_labels"], num_classes)
    y_test = keras.utils.to_categorical(data["test_labels"], num_classes)
    model = seed_model(keras, input_shape, num_classes)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    timer = epoch_timer(jax, keras)
    fit = {"batch_size": args.batch_size, "epochs": args.epochs, "verbose": 2, "callbacks": [timer]}
    train_count, val_first, val_count = bench_common.keras_split(len(x_train), 0.1, args.limit_train)
    if args.limit_train or args.limit_eval:
        val_count = min(val_count, args.limit_eval or val_count)
        val = slice(val_first, val_first + val_count)
        x_test, y_test = x_test[:args.limit_eval or None], y_test[:args.limit_eval or None]
        model.fit(x_train[:train_count], y_train[:train_count], validation_data=(x_train[val], y_train[val]), **fit)
    else:
        model.fit(x_train, y_train, validation_split=0.1, **fit)
    score = model.evaluate(x_test, y_test, verbose=0)
    recipe = time.perf_counter() - t_recipe
    device = jax.devices()[0]
    return bench_common.result_line(
        row="keras/jax", framework=f"keras {keras.__version__} / jax {jax.__version__}",
        device=f"{device.platform}: {device.device_kind}", batch=args.batch_size, seed=args.seed,
        epochs=args.epochs, train_images=train_count, val_images=val_count, test_images=len(x_test),
        epoch_seconds=timer.epoch, train_seconds=timer.train, val_accuracy=timer.val_acc,
        test_accuracy=round(float(score[1]), 6), test_loss=round(float(score[0]), 6), recipe_seconds=recipe,
        note="the seed's model code; numpy input as in the notebook; " + ("TF32" if args.tf32 else "strict FP32"))


def main(argv=None):
    return bench_common.run_main(PROG, parse_args, run, argv, [(NotMeasurable, "not measurable here: ")])


if __name__ == "__main__":
    sys.exit(main())
