"""Renders report.html in headless Chromium and checks the screenshot: the page must
load offline and show content — text, the contents sidebar and coloured figures — not a
blank or error page.

usage: check_report_render.py REPORT.html SCREENSHOT.png [--height PX]
Exit status 0 when the screenshot looks like a report; the PNG stays for a look.
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no Chromium found: run `scripts/setup chromium` (installs Debian's chromium)")


def screenshot(page: Path, png: Path, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            # Offline: any network request would fail; the page must not need one.
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
            f"--window-size=1400,{height}", "--virtual-time-budget=5000",
            f"--screenshot={png}", page.resolve().as_uri(),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("png")
    ap.add_argument("--height", type=int, default=6000)
    a = ap.parse_args()
    png = Path(a.png)
    screenshot(Path(a.report), png, a.height)
    img = Image.open(png).convert("RGB")
    w, h = img.size
    small = img.resize((w // 4, h // 4))
    pixels = list(small.get_flattened_data())
    ink = sum(1 for r, g, b in pixels if r + g + b < 600) / len(pixels)
    colour = sum(1 for r, g, b in pixels if max(r, g, b) - min(r, g, b) > 60) / len(pixels)
    sidebar = small.crop((0, 0, small.width // 8, small.height // 4))
    sidebar_ink = sum(1 for r, g, b in sidebar.get_flattened_data() if r + g + b < 600) / (sidebar.width * sidebar.height)
    problems = []
    if ink < 0.01:
        problems.append(f"almost blank page ({ink:.1%} dark pixels)")
    if colour < 0.002:
        problems.append(f"no coloured figures visible ({colour:.2%} coloured pixels)")
    if sidebar_ink < 0.005:
        problems.append("no table of contents in the left sidebar")
    print(f"{png}: {w}×{h}, {ink:.1%} dark pixels, {colour:.2%} coloured, contents sidebar {sidebar_ink:.1%} ink")
    for p in problems:
        print(f"{a.report}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
