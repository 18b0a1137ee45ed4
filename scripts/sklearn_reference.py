"""scikit-learn's answer to a tabular regression run, on the identical rows: Ridge
(the linear reference) and HistGradientBoostingRegressor (the strong reference on
tabular data), each with median imputation, standardisation and one-hot categories
fitted on the run's training rows. Prints one JSON object.

usage: sklearn_reference.py CSV SPLIT_JSON TARGET [--categorical COL ...] [--log-target] [--quick]
"""
import argparse
import csv
import json
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MISSING = {"", "NA", "N/A", "NaN", "nan", "null"}


def read_table(path, target, categorical):
    """Rows with a target, as (numeric matrix with NaN, categorical matrix, target)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t" if path.endswith((".tsv", ".tab")) else ","))
    rows = [r for r in rows if r[target].strip() not in MISSING]
    numeric = [c for c in rows[0] if c != target and c not in categorical]
    num = np.array([[np.nan if r[c].strip() in MISSING else float(r[c]) for c in numeric] for r in rows])
    cat = np.array([[r[c].strip() for c in categorical] for r in rows], dtype=object).reshape(len(rows), -1)
    y = np.array([float(r[target]) for r in rows])
    return num, cat, y


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("split")
    ap.add_argument("target")
    ap.add_argument("--categorical", nargs="*", default=[])
    ap.add_argument("--log-target", action="store_true")
    ap.add_argument("--quick", action="store_true", help="fewer boosting iterations (smoke runs)")
    args = ap.parse_args()

    num, cat, y = read_table(args.csv, args.target, args.categorical)
    split = json.load(open(args.split))
    train, test = split["train"], split["test"]
    scale = make_pipeline(SimpleImputer(strategy="median"), StandardScaler()).fit(num[train])
    onehot = None
    if cat.shape[1]:
        onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(cat[train])

    def features(idx):
        blocks = [scale.transform(num[idx])]
        if onehot is not None:
            blocks.append(onehot.transform(cat[idx]))
        return np.hstack(blocks)

    x_train, x_test = features(train), features(test)
    models = {
        "scikit-learn RidgeCV": RidgeCV(alphas=np.logspace(-3, 3, 13)),
        "scikit-learn HistGradientBoosting": HistGradientBoostingRegressor(
            max_iter=50 if args.quick else 500, random_state=0),
    }
    out = []
    for name, model in models.items():
        fit_y = np.log1p(y[train]) if args.log_target else y[train]
        started = time.perf_counter()
        model.fit(x_train, fit_y)
        seconds = time.perf_counter() - started
        p = model.predict(x_test)
        p = np.expm1(p) if args.log_target else p
        t = y[test]
        out.append({
            "name": name, "fit_seconds": seconds,
            "rmse": float(np.sqrt(mean_squared_error(t, p))), "mae": float(mean_absolute_error(t, p)),
            "r2": float(r2_score(t, p)), "n": len(test),
        })
    json.dump({"sklearn": __import__("sklearn").__version__, "models": out}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
