"""Prints a standalone report (build_report.py's HTML) to PDF with headless Chromium:
A4, the contents on the first page and as PDF bookmarks, each section on a new page,
figures and tables kept whole, code cells left as the HTML shows them (collapsed with
--hide-code). Offline: the page may not fetch anything.

usage: build_pdf.py REPORT.html REPORT.pdf

The PDF is written atomically (a failed print leaves an earlier REPORT.pdf in place).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from check_report_render import chromium

PRINT_CSS = """
<style>
  @page { size: A4; margin: 14mm 12mm 16mm 12mm; }
  @media print {
    body { margin-left: 0 !important; font-size: 11px; }
    /* The contents sidebar becomes the first page. */
    #lab-toc { display: block !important; position: static; width: auto; height: auto;
               overflow: visible; background: none; border: none; padding: 0;
               font-size: 13px; break-after: page; }
    #lab-toc button { display: none; }
    h2 { break-before: page; }
    .jp-OutputArea-output, figure, table, svg, img, pre { break-inside: avoid; }
    h2, h3 { break-after: avoid; }
  }
</style>
"""


def print_to_pdf(html: Path, pdf: Path) -> None:
    page = html.read_text(encoding="utf-8")
    if "</head>" not in page:
        sys.exit(f"{html}: not an HTML report (no </head>); build it with scripts/build_report.py")
    with tempfile.TemporaryDirectory() as tmp:
        printable = Path(tmp) / "report.html"
        printable.write_text(page.replace("</head>", PRINT_CSS + "</head>", 1), encoding="utf-8")
        out = Path(tmp) / "report.pdf"
        cmd = [
            chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp}/profile",
            "--no-pdf-header-footer", "--generate-pdf-document-outline",
            "--virtual-time-budget=10000", f"--print-to-pdf={out}", printable.as_uri(),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if result.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            sys.exit(f"{html}: Chromium did not print a PDF (exit {result.returncode}): {result.stderr[-800:]}")
        staged = pdf.with_name(pdf.name + ".tmp")
        shutil.copyfile(out, staged)
        os.replace(staged, pdf)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("html")
    ap.add_argument("pdf")
    a = ap.parse_args()
    print_to_pdf(Path(a.html), Path(a.pdf))
    print(f"wrote {a.pdf} ({Path(a.pdf).stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
