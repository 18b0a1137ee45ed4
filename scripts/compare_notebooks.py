"""Compares the outputs of two executed notebooks cell by cell — text, HTML tables,
SVG figures — ignoring only what measures time (seconds, images/s, timestamps) and
where runs were stored. Prints the cells that differ; exits 1 if any does.

usage: compare_notebooks.py COMMITTED.ipynb FRESH.ipynb
"""
import re
import sys

import nbformat

# What legitimately changes between two runs of the same computation.
TIMING = [
    (re.compile(r"\|\s*[\d.]+ s\s+\d+ (img|rows|texts)/s"), "| <time>"),  # epoch lines
    (re.compile(r"[^\s>]*: finished run with the same config (and data )?found; reusing it\n?"), ""),
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
    texts = [streams] + [d.get("text/html") or d.get("image/svg+xml") or d.get("text/plain", "") for d in rich]
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


def main() -> int:
    a, b = (nbformat.read(p, as_version=4) for p in sys.argv[1:3])
    code_a = [c for c in a.cells if c.cell_type == "code"]
    code_b = [c for c in b.cells if c.cell_type == "code"]
    if [c.source for c in code_a] != [c.source for c in code_b]:
        print("the notebooks have different code cells; compare runs of the same notebook", file=sys.stderr)
        return 1
    differing = []
    for n, (ca, cb) in enumerate(zip(code_a, code_b)):
        if normalized(ca) != normalized(cb):
            differing.append(n)
            print(f"code cell {n} differs: {ca.source.splitlines()[0][:80]}")
    total = len(code_a)
    print(f"{total - len(differing)} of {total} code cells have identical outputs (timings ignored)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
