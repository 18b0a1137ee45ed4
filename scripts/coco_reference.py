"""COCO box metrics by pycocotools for a ground-truth file and a results file: the
reference the detection track's own evaluation is tested against.

    python coco_reference.py GT.json RESULTS.json   → one JSON object on stdout
"""
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main(gt_path, dt_path):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        results = json.load(open(dt_path))
        dt = gt.loadRes(results) if results else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    per_class = []
    for k in range(precision.shape[2]):
        p = precision[:, :, k, 0, -1]
        per_class.append([float(p[p > -1].mean()) if (p > -1).any() else -1.0,
                          float(p[0][p[0] > -1].mean()) if (p[0] > -1).any() else -1.0])
    print(json.dumps({
        "stats": [float(s) for s in ev.stats],
        "per_class": per_class,
        "pr_curve50": [precision[0, :, k, 0, -1].tolist() for k in range(precision.shape[2])],
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
