"""Checks an exported ONNX model with the real tools: the ONNX checker (full check,
with shape inference), opset >= 17, a symbolic batch dimension, and ONNX Runtime's
outputs against the expected logits (max abs difference <= 1e-4) at two batch sizes.

usage: check_onnx.py MODEL.onnx INPUT.npy EXPECTED.npy
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main() -> int:
    path, x_path, y_path = sys.argv[1:4]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    problems = []
    if opset < 17:
        problems.append(f"opset {opset} < 17")
    if not batch.dim_param:
        problems.append("batch dimension is not symbolic")
    if any(n.op_type in ("BatchNormalization", "Dropout") for n in model.graph.node):
        problems.append("BatchNormalization or Dropout left in the graph")
    x, expected = np.load(x_path), np.load(y_path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    one = session.run(None, {"input": x[:1]})[0]
    diff = float(np.abs(got - expected).max())
    diff_one = float(np.abs(one - expected[:1]).max())
    if max(diff, diff_one) > 1e-4:
        problems.append(f"max abs difference {max(diff, diff_one):.2e} > 1e-4")
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{path}: checker ok, opset {opset}, ops {ops}, max abs diff {diff:.2e} (batch {len(x)}), {diff_one:.2e} (batch 1)")
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
