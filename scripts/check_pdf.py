"""Checks a printed report (build_pdf.py's PDF) with poppler's tools: A4 pages, at least
--min-pages of them, the contents on the first page and as bookmarks, the text of the
report (each --expect phrase found by pdftotext), and figures that render: pdftoppm
draws every page and at least --min-figure-pages of them must carry coloured ink.

usage: check_pdf.py REPORT.pdf [--min-pages N] [--min-figure-pages N] [--expect TEXT]...
"""
import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image


def run(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
    except FileNotFoundError:
        sys.exit(f"`{cmd[0]}` not found: run `scripts/setup chromium` (installs poppler-utils)")


def coloured_pages(pdf: Path) -> list[int]:
    """Pages (1-based) on which more than 0.5 % of the pixels are clearly coloured."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        run("pdftoppm", "-r", "30", "-png", str(pdf), f"{tmp}/page")
        for png in sorted(Path(tmp).glob("page-*.png")):
            pixels = list(Image.open(png).convert("RGB").get_flattened_data())
            colour = sum(1 for r, g, b in pixels if max(r, g, b) - min(r, g, b) > 60) / len(pixels)
            if colour > 0.005:
                found.append(int(re.search(r"(\d+)\.png$", png.name).group(1)))
    return found


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pdf")
    ap.add_argument("--min-pages", type=int, default=2)
    ap.add_argument("--min-figure-pages", type=int, default=1)
    ap.add_argument("--expect", action="append", default=[])
    a = ap.parse_args()
    pdf = Path(a.pdf)
    info = run("pdfinfo", str(pdf))
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    size = re.search(r"^Page size:\s+(.*)$", info, re.M).group(1)
    problems = []
    if pages < a.min_pages:
        problems.append(f"{pages} pages, expected at least {a.min_pages}")
    if "A4" not in size:
        problems.append(f"page size {size}, expected A4")
    first = run("pdftotext", "-f", "1", "-l", "1", str(pdf), "-")
    if "Contents" not in first:
        problems.append("no contents on the first page")
    if b"/Outlines" not in pdf.read_bytes():
        problems.append("no bookmarks (PDF outline)")
    text = " ".join(run("pdftotext", str(pdf), "-").split())
    for phrase in a.expect:
        if " ".join(phrase.split()) not in text:
            problems.append(f"text {phrase!r} not found")
    figures = coloured_pages(pdf)
    if len(figures) < a.min_figure_pages:
        problems.append(f"{len(figures)} pages with coloured figures, expected at least {a.min_figure_pages}")
    for p in problems:
        print(f"{pdf}: {p}", file=sys.stderr)
    if not problems:
        print(f"{pdf}: {pages} A4 pages, contents and bookmarks, {len(figures)} pages with figures")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
