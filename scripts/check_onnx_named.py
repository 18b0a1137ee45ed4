"""Checks an ONNX export fed by named inputs — a tabular regression run (preprocessing
inside: `numeric` floats and one string input per category) or a text run (`ids`) — with
the real tools: the
ONNX checker (full check, with shape inference), then ONNX Runtime on raw rows against
the predictions the crate computed with tch. Prints one JSON object; exits 1 when the
relative difference passes 1e-4 or a check fails.

usage: check_onnx_named.py MODEL.onnx INPUTS.json EXPECTED.json
  INPUTS.json   {"numeric": [[x, null, ...], ...], "<categorical column>": ["value", ...], ...}
                or {"ids": [[token id, ...], ...]}
  EXPECTED.json [[prediction, ...], ...]
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main() -> int:
    path, inputs_path, expected_path = sys.argv[1:4]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    raw = json.load(open(inputs_path))
    feeds = {}
    for name, values in raw.items():
        if name == "numeric":
            feeds[name] = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=np.float32)
        elif name == "ids":  # a text model's token ids
            feeds[name] = np.array(values, dtype=np.int64)
        else:
            feeds[name] = np.array(values, dtype=object).reshape(-1, 1)
    expected = np.array(json.load(open(expected_path)), dtype=np.float64)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)[0].astype(np.float64)
    one = session.run(None, {k: v[:1] for k, v in feeds.items()})[0].astype(np.float64)
    rel = float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1.0)))
    rel_one = float(np.max(np.abs(one - expected[:1]) / np.maximum(np.abs(expected[:1]), 1.0)))
    result = {
        "rows": int(len(expected)), "max_abs_diff": float(np.max(np.abs(got - expected))),
        "max_rel_diff": max(rel, rel_one), "ops": sorted({n.op_type for n in model.graph.node}),
        "onnxruntime": ort.__version__,
    }
    print(json.dumps(result))
    return 0 if result["max_rel_diff"] <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
