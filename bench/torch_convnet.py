#!/usr/bin/env python3
"""The seed network and recipe in PyTorch, for the side-by-side benchmark (bench/side_by_side.sh).

    bench/torch_convnet.py [--mode eager|compile] [--batch-size 128] [--epochs 15] [--seed 1]
                           [--data DIR] [--device auto|cuda|cpu] [--val-split 0.1]
                           [--limit-train N] [--limit-eval N] [--tf32]

Network (as `convnet train --arch seed`, host/model.cpp): Conv2d(1→32, 3×3 valid) ReLU, max-pool 2
(floor), Conv2d(32→64) ReLU, pool, Conv2d(64→64) ReLU, pool, flatten (1×1×64, so NCHW and Keras'
NHWC flatten orders agree), Dropout(0.6), Linear(64→10); softmax lives in the loss. Weights
Glorot-uniform (torch's xavier_uniform_ computes the same fans as Keras: in·k·k and out·k·k),
biases zero, from --seed.
Recipe: Adam lr 1e-3, betas 0.9/0.999, eps 1e-7 (Keras' defaults; torch adds eps to the
bias-corrected sqrt(v̂), Keras to sqrt(v) — with eps 1e-7 the two differ far below the
run-to-run spread), batch 128, categorical cross-entropy averaged over the batch, 15 epochs;
validation = the last 10% of the training set, taken before shuffling (Keras' validation_split),
evaluated after every epoch; final test accuracy on the 10,000 test images.
Data: the IDX files in --data / $MNIST_DIR (bench_common.py), converted once to float32 in [0, 1]
and kept on the device; each epoch is shuffled by torch.randperm on the device, and each batch is
gathered there by index_select: no DataLoader, no host traffic inside an epoch. Loss and accuracy
accumulate in device tensors and are read once per epoch, as convnet does.
Precision: strict FP32 (cuDNN's TF32 default turned off, matmul precision "highest"), like
convnet's default; --tf32 allows TF32 (compare with `convnet train --tf32`).

Modes:
  eager    plain PyTorch; Adam(fused=True), the fastest stock optimizer step.
  compile  the network and its loss in torch.compile(mode="reduce-overhead", dynamic=False), so
           forward and backward replay as CUDA graphs; the same fused Adam runs after it (one
           multi-tensor kernel already, nothing for a graph to save).
The last batch of an epoch (54,000 = 421·128 + 112) would be a second shape, and with
dynamic=False a second compilation and CUDA graph for training, and again for validation (6,000)
and test (10,000). Instead every batch has the full size: the last one is padded with index 0 and
its padding masked out of the loss (sum of per-image losses × mask ÷ images in the batch) and of
the counts, which gives exactly the gradient of the 112-image batch. One shape means one training
graph and one evaluation graph, compiled during epoch 1. Eager runs the same padded batches so the
two rows do identical arithmetic.

Timing: torch.cuda.synchronize() before and after each epoch's training steps and after its
validation pass. Steady state is the median of epochs 2..E; epoch 1 (cuDNN autotuning, and
compilation in compile mode) is reported separately as first_epoch_seconds. recipe_seconds runs
from the MNIST arrays being in host memory to the test accuracy: upload, model, compilation, all
epochs with validation, test. Output: one JSON line (bench_common.result_line), last on stdout;
in compile mode it adds compiled_graphs (2 expected: training and evaluation, the padding's point)
and cudagraph_skips (how often inductor ran a graph without CUDA graphs: on a GPU anything above 0
means the row is not the reduce-overhead baseline, and its note says so; on the CPU, always).
"""
import argparse
import math
import os
import platform
import sys
import time

import bench_common

PROG = "torch_convnet.py"
KERAS_ADAM = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7}


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="The seed ConvNet recipe in PyTorch.")
    p.add_argument("--mode", choices=("eager", "compile"), default="eager")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", default=os.environ.get("MNIST_DIR", ""))
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--val-split", type=float, default=0.1)
    p.add_argument("--limit-train", type=int, default=0, help="train on the first N training images")
    p.add_argument("--limit-eval", type=int, default=0, help="validate and test on N images (dry runs)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 in cuDNN and cuBLAS")
    a = p.parse_args(argv)
    if a.batch_size < 1 or a.epochs < 1 or a.limit_train < 0 or a.limit_eval < 0:
        p.error("--batch-size and --epochs must be >= 1, --limit-train and --limit-eval >= 0")
    if not 0.0 <= a.val_split < 1.0:
        p.error("--val-split must be in [0, 1)")
    return a


def build_net(torch):
    """The seed network with Keras' initialisation; the caller seeds torch first."""
    nn = torch.nn
    F = torch.nn.functional

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3)
            self.conv2 = nn.Conv2d(32, 64, 3)
            self.conv3 = nn.Conv2d(64, 64, 3)
            self.dropout = nn.Dropout(0.6)
            self.dense = nn.Linear(64, 10)
            for layer in (self.conv1, self.conv2, self.conv3, self.dense):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

        def forward(self, x):  # x: (N, 1, 28, 28)
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 32, 13, 13)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 64, 5, 5)
            x = F.max_pool2d(F.relu(self.conv3(x)), 2)  # (N, 64, 1, 1)
            return self.dense(self.dropout(torch.flatten(x, 1)))  # (N, 10) logits

    return ConvNet()


def with_masked_loss(torch, net):
    """net + loss as one module: forward(x, y, mask) -> (mean loss over the unmasked images,
    summed loss, correct count). A masked (padding) image contributes nothing to any of them."""
    F = torch.nn.functional

    class WithLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, y, mask):  # x: (B, 1, 28, 28), y: (B,) int64, mask: (B,) float 0/1
            logits = self.net(x)
            per_image = F.cross_entropy(logits, y, reduction="none")
            loss_sum = (per_image * mask).sum()
            correct = ((logits.argmax(1) == y).to(mask.dtype) * mask).sum()
            return loss_sum / mask.sum(), loss_sum.detach(), correct

    return WithLoss()


class Batches:
    """Fixed-size batches over `count` images: index rows padded with 0, and the 0/1 mask."""

    def __init__(self, torch, count, batch, device):
        self.steps = math.ceil(count / batch)
        self.batch = batch
        self.pad = self.steps * batch - count
        self.mask = (torch.arange(self.steps * batch, device=device) < count).float()

    def padded(self, torch, order):
        return torch.cat([order, order.new_zeros(self.pad)]) if self.pad else order

    def step(self, padded_order, s):
        rows = slice(s * self.batch, (s + 1) * self.batch)
        return padded_order[rows], self.mask[rows]


def compile_counts(torch):
    """(graphs compiled, CUDA-graph skips) so far in this process, from the counters torch.compile
    keeps; (None, None) where this PyTorch has no such counters (a private module)."""
    try:
        from torch._dynamo.utils import counters
        return counters["stats"]["unique_graphs"], counters["inductor"]["cudagraph_skips"]
    except (ImportError, AttributeError, TypeError):
        return None, None


def compile_note(graphs, skips, device):
    """The part of a compile run's note about its graphs (", N compiled graphs..."); warns on stderr
    when a GPU run fell back from CUDA graphs."""
    if graphs is None:
        return ", compiled graphs not counted (no torch._dynamo counters)"
    note = f", {graphs} compiled graph{'s' if graphs != 1 else ''}"
    if device.type == "cuda" and skips:
        note += f", CUDA graphs skipped {skips} times: not the reduce-overhead baseline"
        print(f"{PROG}: warning: inductor skipped CUDA graphs {skips} times (TORCH_LOGS=perf_hints says why)",
              file=sys.stderr)
    return note


def pick_device(torch, want):
    if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise bench_common.BenchError("--device cuda: torch sees no CUDA device")
        return torch.device("cuda")
    return torch.device("cpu")


def describe_device(torch, device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


class Trainer:
    """One run: data on the device, the (compiled) step, per-epoch training and evaluation."""

    def __init__(self, torch, args, data, device):
        self.torch, self.args, self.device = torch, args, device
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        n = len(data["train_labels"])
        self.train_count, val_first, self.val_count = bench_common.keras_split(n, args.val_split, args.limit_train)
        if args.limit_eval:
            self.val_count = min(self.val_count, args.limit_eval)
        self.test_count = min(len(data["test_labels"]), args.limit_eval or len(data["test_labels"]))
        to_x = lambda a: torch.from_numpy(a).to(device).float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
        to_y = lambda a: torch.from_numpy(a.astype("int64")).to(device)
        self.x_train, self.y_train = to_x(data["train_images"]), to_y(data["train_labels"])
        self.val_first = val_first
        self.x_test, self.y_test = to_x(data["test_images"]), to_y(data["test_labels"])
        torch.manual_seed(args.seed)
        self.net = build_net(torch).to(device)
        self.model = with_masked_loss(torch, self.net)
        fused = {"fused": True} if device.type in ("cuda", "cpu") else {}
        self.opt = torch.optim.Adam(self.net.parameters(), **KERAS_ADAM, **fused)
        self.step_fn = self.model
        if args.mode == "compile":
            self.step_fn = torch.compile(self.model, mode="reduce-overhead", dynamic=False)
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(args.seed)
        self.train_batches = Batches(torch, self.train_count, args.batch_size, device)

    def _mark_step(self):
        # Tells the CUDA-graph trees a new iteration begins, so outputs of the last one may be reused.
        if self.args.mode == "compile":
            self.torch.compiler.cudagraph_mark_step_begin()

    def train_epoch(self):
        torch, b = self.torch, self.train_batches
        self.model.train()
        order = b.padded(torch, torch.randperm(self.train_count, device=self.device, generator=self.gen))
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        for s in range(b.steps):
            rows, mask = b.step(order, s)
            self._mark_step()
            loss, batch_loss, batch_correct = self.step_fn(self.x_train.index_select(0, rows),
                                                           self.y_train.index_select(0, rows), mask)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            loss_sum += batch_loss
            correct += batch_correct
        return loss_sum, correct

    def evaluate(self, x, y, first, count):
        """(loss, accuracy) over images [first, first + count) of x/y, in batches of --batch-size."""
        torch = self.torch
        b = Batches(torch, count, self.args.batch_size, self.device)
        order = b.padded(torch, torch.arange(first, first + count, device=self.device))
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        self.model.eval()
        with torch.no_grad():
            for s in range(b.steps):
                rows, mask = b.step(order, s)
                self._mark_step()
                _, batch_loss, batch_correct = self.step_fn(x.index_select(0, rows), y.index_select(0, rows), mask)
                loss_sum += batch_loss
                correct += batch_correct
        return loss_sum.item() / count, correct.item() / count


def run(args):
    data = bench_common.read_mnist(args.data)
    import torch  # after the data checks, so a bad --data is reported without torch's import time

    t_recipe = time.perf_counter()
    device = pick_device(torch, args.device)
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.set_float32_matmul_precision("high" if args.tf32 else "highest")
    torch.backends.cudnn.benchmark = True  # every batch has one shape: autotune once, in epoch 1
    t = Trainer(torch, args, data, device)
    epoch_s, train_s, val_acc = [], [], []
    for epoch in range(1, args.epochs + 1):
        t.sync()
        t0 = time.perf_counter()
        loss_sum, correct = t.train_epoch()
        t.sync()
        t1 = time.perf_counter()
        loss, acc = loss_sum.item() / t.train_count, correct.item() / t.train_count
        line = f"epoch {epoch}/{args.epochs}: loss {loss:.4f} accuracy {acc:.4f}"
        if t.val_count:
            v_loss, v_acc = t.evaluate(t.x_train, t.y_train, t.val_first, t.val_count)
            val_acc.append(round(v_acc, 6))
            line += f" val_loss {v_loss:.4f} val_accuracy {v_acc:.4f}"
        t.sync()
        t2 = time.perf_counter()
        epoch_s.append(t2 - t0)
        train_s.append(t1 - t0)
        print(f"{line} {t2 - t0:.3f}s", file=sys.stderr, flush=True)
        if not math.isfinite(loss):
            raise bench_common.BenchError(f"training loss became {loss} in epoch {epoch}")
    test_loss, test_acc = t.evaluate(t.x_test, t.y_test, 0, t.test_count)
    recipe = time.perf_counter() - t_recipe
    note, extra = "Adam(fused=True)", {}
    if args.mode == "compile":
        graphs, skips = compile_counts(torch)
        note += ", torch.compile reduce-overhead" + compile_note(graphs, skips, device)
        extra = {"compiled_graphs": graphs, "cudagraph_skips": skips}
    note += ", TF32" if args.tf32 else ", strict FP32"
    return bench_common.result_line(
        row=f"pytorch {args.mode}", framework=f"pytorch {torch.__version__}",
        device=describe_device(torch, device), batch=args.batch_size, seed=args.seed, epochs=args.epochs,
        train_images=t.train_count, val_images=t.val_count, test_images=t.test_count, epoch_seconds=epoch_s,
        train_seconds=train_s, val_accuracy=val_acc, test_accuracy=round(test_acc, 6),
        test_loss=round(test_loss, 6), recipe_seconds=recipe, note=note, extra=extra)


def main(argv=None):
    return bench_common.run_main(PROG, parse_args, run, argv, [(ImportError, "cannot import PyTorch: ")])


if __name__ == "__main__":
    sys.exit(main())
