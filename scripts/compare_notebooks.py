"""Compares the outputs of two executed notebooks cell by cell — text, HTML tables,
SVG figures — ignoring only what measures time (seconds, images/s, timestamps) and
where runs were stored.

It says which kind of rerun it is, from the environment tables of the two notebooks:
- the same CPU (and libtorch): every output must be identical;
- another CPU: floating-point sums run in another order, so values may move; every
  differing cell must then say the same words with numbers within the tolerance
  (TOLERANCE_POINTS percentage points for values in [0, 1] or percentages, TOLERANCE_REL
  relative otherwise). Figures drawn from such values are reported, not failed.
Prints a table of cell, value, committed, rerun for every number that moved; exits 1
when the rerun fails its kind's rule.

usage: compare_notebooks.py COMMITTED.ipynb FRESH.ipynb
"""
import re
import sys

import nbformat

# What legitimately changes between two runs of the same computation.
TIMING = [
    (re.compile(r"\|\s*[\d.]+ s\s+\d+ (img|rows|texts)/s"), "| <time>"),  # epoch lines
    # Anchored at a line start or a tag's end: unanchored, `[^\s>]*` rescans every long
    # token (SVG path data) from each of its characters, minutes per notebook.
    (re.compile(r"(?m)(?:^|(?<=>))[^\s>]*: finished run with the same config (and data )?found; reusing it\n?"), ""),
    (re.compile(r"linear probe: embedding every split once with the frozen backbone\n?"), ""),
    (re.compile(r"embeddings \[[^\]]*\] \((cached|computed now), [\d.]+ s to compute\)\n?"), ""),
    (re.compile(r"in [\d.]+ s"), "in <time>"),
    (re.compile(r"\b[\d.]+ s\b"), "<time> s"),          # durations in rendered prose
    (re.compile(r"[\d.]+×"), "<ratio>×"),                # speed-ups measured now
    (re.compile(r"\b(met|not met on this run)\b"), "<goal>"),
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z"), "<timestamp>"),
]
# HTML table columns holding times or throughputs, by header.
TIMING_COLUMNS = {"seconds", "img/s", "train s", "embed s", "total s"}
TIMING_HEADER = re.compile(r"(\bms\b|img/s|images/s|speed-up|\bs$|seconds|latency|^first$|^last$)")
# Figures of measured time (latency plots, the dashboard's latency panel) are not compared.
TIMING_FIGURE = re.compile(r"latency|ms per|p50", re.I)


def mask_table(html: str) -> str:
    """Blanks the cells of timing columns in our HTML tables."""
    def mask(table: str) -> str:
        headers = re.findall(r"<th[^>]*>(.*?)</th>", table)
        drop = {i for i, h in enumerate(headers) if h in TIMING_COLUMNS or TIMING_HEADER.search(h)}
        if not drop and not TIMING_HEADER.search(table):
            return table
        def row(m):
            cells = re.findall(r"<td[^>]*>.*?</td>", m.group(0))
            # Key/value tables (e.g. the prediction log's summary): a row named after a timing.
            if cells and TIMING_HEADER.search(re.sub(r"<[^>]+>", "", cells[0]).strip()):
                return "<tr>" + cells[0] + "<td>-</td>" * (len(cells) - 1) + "</tr>"
            return "<tr>" + "".join("<td>-</td>" if i in drop else c for i, c in enumerate(cells)) + "</tr>"
        return re.sub(r"<tr><td.*?</tr>", row, table, flags=re.S)
    return re.sub(r"<table.*?</table>", lambda m: mask(m.group(0)), html, flags=re.S)


def normalized(cell) -> list:
    """The cell's outputs as texts: all stream text joined (how it is chunked into
    messages varies), then each rich output; timings masked."""
    streams = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    rich = [o.get("data", {}) for o in cell.get("outputs", []) if o.get("output_type") != "stream"]
    texts = [streams] + [d.get("text/html") or d.get("image/svg+xml") or d.get("text/markdown") or d.get("text/plain", "") for d in rich]
    out = []
    for text in texts:
        if "<svg" in text[:300] and TIMING_FIGURE.search(text):
            continue
        for pattern, repl in TIMING:
            text = pattern.sub(repl, text)
        text = mask_table(text)
        if text.strip():
            out.append(text)
    return out


TOLERANCE_POINTS = 1.0
TOLERANCE_REL = 0.05
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def machine(nb) -> dict:
    """CPU and libtorch rows of the notebook's environment table."""
    found = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            html = o.get("data", {}).get("text/html", "")
            for key, value in re.findall(r"<td[^>]*>(CPU|libtorch|CPU cores)</td>\s*<td[^>]*>(.*?)</td>", html):
                found.setdefault(key, value)
    return found


def within(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    points = max(abs(x), abs(y)) <= 100 and ("." in a or "." in b)
    if points and max(abs(x), abs(y)) <= 1:
        return abs(x - y) * 100 <= TOLERANCE_POINTS
    if points:
        return abs(x - y) <= TOLERANCE_POINTS or abs(x - y) <= TOLERANCE_REL * max(abs(x), abs(y))
    return abs(x - y) <= TOLERANCE_REL * max(abs(x), abs(y), 1e-12)


def rows_by_key(html: str) -> str:
    """Each HTML table's body rows sorted by their first cell, when those are unique: a
    table sorted by a score may list near-tied rows in another order on another CPU, and
    its values are then paired by row name, not by position."""
    def sort(table: str) -> str:
        rows = re.findall(r"<tr><td.*?</tr>", table, flags=re.S)
        keys = [re.sub(r"<[^>]+>", "", r.split("</td>")[0]).strip() for r in rows]
        if len(set(keys)) != len(keys):
            return table
        ordered = iter(row for _, row in sorted(zip(keys, rows)))
        return re.sub(r"<tr><td.*?</tr>", lambda m: next(ordered), table, flags=re.S)
    return re.sub(r"<table.*?</table>", lambda m: sort(m.group(0)), html, flags=re.S)


def moved_values(texts_a: list, texts_b: list) -> tuple:
    """(same words, [(context, committed, rerun, within tolerance)]) of two cells' texts;
    table rows are paired by name ([`rows_by_key`])."""
    if len(texts_a) != len(texts_b):
        return False, []
    rows, same_words = [], True
    for ta, tb in zip(map(rows_by_key, texts_a), map(rows_by_key, texts_b)):
        if "<svg" in ta[:300]:
            continue
        plain_a, plain_b = (re.sub(r"<[^>]+>", " ", t) for t in (ta, tb))
        if NUMBER.sub("#", plain_a) != NUMBER.sub("#", plain_b):
            same_words = False
            continue
        for ma, mb in zip(NUMBER.finditer(plain_a), NUMBER.finditer(plain_b)):
            if ma.group() != mb.group():
                context = " ".join(plain_a[max(0, ma.start() - 40):ma.start()].split())[-30:]
                rows.append((context, ma.group(), mb.group(), within(ma.group(), mb.group())))
    return same_words, rows


def main() -> int:
    a, b = (nbformat.read(p, as_version=4) for p in sys.argv[1:3])
    code_a = [c for c in a.cells if c.cell_type == "code"]
    code_b = [c for c in b.cells if c.cell_type == "code"]
    if [c.source for c in code_a] != [c.source for c in code_b]:
        print("the notebooks have different code cells; compare runs of the same notebook", file=sys.stderr)
        return 1
    same_machine = machine(a) == machine(b)
    kind = "the same CPU and libtorch" if same_machine else "another machine"
    print(f"committed on {machine(a) or 'unknown'}; rerun on {machine(b) or 'unknown'}: {kind}")
    differing, broken, table = [], [], []
    for n, (ca, cb) in enumerate(zip(code_a, code_b)):
        na, nb_ = normalized(ca), normalized(cb)
        if na == nb_:
            continue
        differing.append(n)
        same_words, rows = moved_values(na, nb_)
        table += [(n, *r) for r in rows]
        environment = machine(nbformat.from_dict({"cells": [ca]})) != {}
        if not environment and (not same_words or not all(r[3] for r in rows)):
            broken.append(n)
        what = ("the environment table" if environment else
                "numbers moved" if same_words else "words differ (a rendered conclusion changed)")
        print(f"code cell {n} differs ({what}): {ca.source.splitlines()[0][:80]}")
    if table:
        print("\n| cell | value | committed | rerun | within tolerance |\n|---|---|---|---|---|")
        for n, context, x, y, ok in table:
            print(f"| {n} | {context} | {x} | {y} | {'yes' if ok else 'NO'} |")
    total = len(code_a)
    print(f"{total - len(differing)} of {total} code cells have identical outputs (timings ignored)")
    if same_machine:
        return 1 if differing else 0
    print(
        f"another machine: {len(differing) - len(broken)} differing cells (the environment table included) say the same words with numbers within "
        f"{TOLERANCE_POINTS} point / {TOLERANCE_REL:.0%}; {len(broken)} do not: {broken}"
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
