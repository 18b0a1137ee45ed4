"""Checks an executed notebook: valid nbformat, every code cell ran, no error output,
and the rich outputs the report relies on (SVG figures, HTML tables) are present.

usage: check_notebook.py NOTEBOOK.ipynb [--min-svg N] [--min-html N] [--html REPORT.html]

With --html, also checks that the exported report carries the figures as inline SVG
(inline or as SVG data URLs) and the tables as HTML tables (not as escaped text).
"""
import argparse
import sys
from datetime import datetime

import nbformat


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--min-svg", type=int, default=1)
    ap.add_argument("--min-html", type=int, default=1)
    ap.add_argument("--html", help="exported report to check as well")
    args = ap.parse_args()
    nb = nbformat.read(args.path, as_version=4)
    nbformat.validate(nb)
    problems = []
    svg = html = tables = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("execution_count") is None:
            problems.append(f"cell {i} was not executed")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i} has an error output: {out.get('ename')}: {out.get('evalue')}")
            if out.get("name") == "stderr":  # evcxr's way of reporting an Err from `?`
                problems.append(f"cell {i} wrote to stderr: {out.get('text', '').strip()[:300]}")
            data = out.get("data", {})
            svg += "image/svg+xml" in data
            html += "text/html" in data
            tables += data.get("text/html", "").count('<table class="lab-table"')
    if svg < args.min_svg:
        problems.append(f"{svg} SVG outputs, expected at least {args.min_svg}")
    if html < args.min_html:
        problems.append(f"{html} HTML outputs, expected at least {args.min_html}")
    if args.html:
        page = open(args.html, encoding="utf-8").read()
        # nbconvert embeds SVG outputs either inline or as base64 data URLs of type image/svg+xml.
        svg_in_page = page.count("<svg") + page.count('src="data:image/svg+xml')
        if svg_in_page < args.min_svg:
            problems.append(f"{args.html}: {svg_in_page} SVG figures, expected at least {args.min_svg}")
        in_page = page.count('<table class="lab-table"')
        if in_page < tables:
            problems.append(f"{args.html}: {in_page} of the notebook's {tables} tables, the rest missing or escaped as text")
    print_section_times(nb)
    for p in problems:
        print(f"{args.path}: {p}", file=sys.stderr)
    if not problems:
        print(f"{args.path}: valid, {svg} SVG and {html} HTML outputs, no errors")
    return 1 if problems else 0


def print_section_times(nb):
    """Wall time per `## ` section, from the execution timestamps nbclient records."""
    sections, current = {}, "(before the first section)"
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            current = cell.source.splitlines()[0][3:].strip()
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            secs = (parse_time(end) - parse_time(start)).total_seconds()
            sections[current] = sections.get(current, 0.0) + secs
    if sections:
        print("time per section: " + "; ".join(f"{name} {secs:.0f} s" for name, secs in sections.items()))


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


if __name__ == "__main__":
    sys.exit(main())
