"""The serving baseline a student would write instead of `lab serve`: FastAPI on uvicorn
(uvloop + httptools) with onnxruntime, serving the same ONNX file with the same
preprocessing (PIL: grey or RGB, bilinear resize to the model's size, the run's
normalisation) and the same answer (top-3 classes with probabilities).

usage: serve_fastapi.py --onnx model.onnx --run RUN_DIR [--port 8000] [--workers 1]
"""
import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from PIL import Image

app = FastAPI()
_state = {}


def _load():
    run = Path(os.environ["LAB_SERVE_RUN"])
    meta = json.loads((run / "meta.json").read_text())
    norm = meta["normalization"]
    sess = ort.InferenceSession(os.environ["LAB_SERVE_ONNX"], providers=["CPUExecutionProvider"])
    shape = sess.get_inputs()[0].shape  # [batch, C, H, W]
    _state.update(
        sess=sess, channels=int(shape[1]), size=(int(shape[3]), int(shape[2])),
        mean=np.array(norm["mean"], np.float32).reshape(-1, 1, 1) * 255.0,
        std=np.array(norm["std"], np.float32).reshape(-1, 1, 1) * 255.0)


@app.post("/predict")
async def predict(request: Request):
    if not _state:
        _load()
    started = time.perf_counter()
    body = await request.body()
    try:
        img = Image.open(io.BytesIO(body))
        img = img.convert("L" if _state["channels"] == 1 else "RGB")
    except Exception as e:  # noqa: BLE001 — any decoding failure is the client's
        raise HTTPException(status_code=400, detail=f"not an image: {e}")
    if img.size != _state["size"]:
        img = img.resize(_state["size"], Image.BILINEAR)
    x = np.asarray(img, np.float32)
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
    x = ((x - _state["mean"]) / _state["std"])[None]
    logits = _state["sess"].run(None, {"input": x})[0][0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    top = np.argsort(-p)[:3]
    return {
        "predictions": [[{"class": int(c), "probability": float(p[c])} for c in top]],
        "latency_ms": (time.perf_counter() - started) * 1000.0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    os.environ["LAB_SERVE_ONNX"] = str(Path(args.onnx).resolve())
    os.environ["LAB_SERVE_RUN"] = str(Path(args.run).resolve())
    uvicorn.run("serve_fastapi:app", host="127.0.0.1", port=args.port, workers=args.workers,
                log_level="warning", app_dir=str(Path(__file__).parent))


if __name__ == "__main__":
    main()
