"""PyTorch reference for `lab bench`: the same reference CNN, optimiser, batch sizes,
threads and Fashion-MNIST batches, timed the same way. Prints lines in lab's format.

usage: bench_pytorch.py [--steps N] [--threads T] [--channels-last] [--bf16]
"""
import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

DATA = Path(__file__).resolve().parent.parent / "data" / "fashion_mnist"


def load(prefix):
    with gzip.open(DATA / f"{prefix}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(DATA / f"{prefix}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = torch.from_numpy(x.astype(np.float32) / 255.0)
    return (x - x.mean()) / x.std(), torch.from_numpy(y.astype(np.int64))


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def reference_cnn():
    return nn.Sequential(
        *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
        *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--eval-batch-size", type=int, default=512)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="CPU autocast to bfloat16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    layout = "channels_last" if args.channels_last else "nchw"
    if args.bf16:
        layout += "_bf16"
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    model = reference_cnn().to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    xtr, ytr = load("train")
    perm = torch.randperm(len(ytr))
    bs = args.batch_size
    batches = [(xtr[perm[i * bs:(i + 1) * bs]].contiguous(memory_format=fmt), ytr[perm[i * bs:(i + 1) * bs]])
               for i in range(args.steps + 5)]
    model.train()

    def step(x, y):
        opt.zero_grad()
        with autocast():
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for x, y in batches[:5]:
        step(x, y)
    t0 = time.perf_counter()
    n = 0
    for x, y in batches[5:]:
        step(x, y)
        n += len(y)
    print(f"pytorch train img/s {n / (time.perf_counter() - t0):.1f} (reference CNN, batch {bs}, {args.threads} threads, {layout})")

    xte, _ = load("t10k")
    ebs = args.eval_batch_size
    test = [xte[i:i + ebs].contiguous(memory_format=fmt) for i in range(0, len(xte), ebs)]
    model.eval()
    with torch.inference_mode(), autocast():
        model(test[0])
        t0 = time.perf_counter()
        n = 0
        for _ in range(3):  # three passes over the test set: long enough to time
            for x in test:
                model(x).argmax(-1).sum()
                n += len(x)
    print(f"pytorch eval img/s {n / (time.perf_counter() - t0):.1f} (reference CNN, batch {ebs}, {args.threads} threads, {layout})")


if __name__ == "__main__":
    main()
