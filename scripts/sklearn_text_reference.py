"""scikit-learn's TF-IDF + logistic regression (word 1–2-grams and character 2–5-grams,
the strong classic baseline of sentence polarity) on a text run's identical split.
Reads the texts from a JSON file the crate writes; prints one JSON object.

usage: sklearn_text_reference.py SPLIT_TEXTS.json
  SPLIT_TEXTS.json  {"train": {"texts": [...], "labels": [...]}, "test": {...}}
"""
import json
import sys
import time

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score


def main() -> int:
    data = json.load(open(sys.argv[1]))
    train, test = data["train"], data["test"]
    started = time.perf_counter()
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    x_train = hstack([words.fit_transform(train["texts"]), chars.fit_transform(train["texts"])]).tocsr()
    x_test = hstack([words.transform(test["texts"]), chars.transform(test["texts"])]).tocsr()
    model = LogisticRegression(C=4.0, max_iter=2000).fit(x_train, train["labels"])
    seconds = time.perf_counter() - started
    p = model.predict(x_test)
    print(json.dumps({
        "name": "TF-IDF word 1–2 + char 2–5, logistic regression (scikit-learn)",
        "accuracy": accuracy_score(test["labels"], p), "macro_f1": f1_score(test["labels"], p, average="macro"),
        "fit_seconds": seconds, "features": int(x_train.shape[1]),
        "sklearn": __import__("sklearn").__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
