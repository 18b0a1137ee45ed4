"""Opens notebooks in a real JupyterLab through headless Chromium, as someone who has just
cloned the repository (or received a handed-in report) would: unsigned, so JupyterLab
renders only the outputs it deems safe. Checks from the page's DOM that every code cell
whose saved outputs hold a figure shows a decoded image there. With --run, also runs the
first N code cells of one notebook through JupyterLab's own run command on the Rust
kernel, and checks that they finish without an error and that a table and a figure
appear below them — a real kernel round trip. Nothing is saved back to the notebooks.

usage: check_jupyterlab.py --root DIR [NOTEBOOK...] [--run NOTEBOOK:N] [--timeout S]
  NOTEBOOK   a path relative to DIR (the server's root)
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cdp import Page, free_port, start_chromium, wait_for

# The notebook's panel in the main area, activated so that JupyterLab's commands (which
# act on the current notebook) find it: a headless page never gets focus by itself.
PANEL_JS = """const app = window.jupyterapp;
  const w = app && [...app.shell.widgets('main')].find(w => w.content && w.content.model);
  if (w && app.shell.currentWidget !== w) app.shell.activateById(w.id);"""

# Per cell, from the DOM: decoded images and inline SVGs in its outputs, lab tables,
# error outputs, and whether JupyterLab trusts it.
CELLS_JS = """(() => {
  PANEL
  if (!w || !w.context.isReady) return null;
  const nb = w.content;
  return Array.from(nb.node.querySelectorAll('.jp-Cell')).map((c, i) => ({
    code: c.classList.contains('jp-CodeCell'),
    images: Array.from(c.querySelectorAll('.jp-OutputArea-output img'))
      .filter(img => img.complete && img.naturalWidth > 0).length,
    svg: c.querySelectorAll('.jp-OutputArea-output svg').length,
    tables: c.querySelectorAll('.jp-OutputArea-output table.lab-table').length,
    errors: c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length,
    trusted: nb.model.cells.get(i) ? nb.model.cells.get(i).trusted : null,
  }));
})()""".replace("PANEL", PANEL_JS)

# Runs cell CELL with JupyterLab's own command (what Shift+Enter and the Run button call);
# resolves once the kernel has replied.
RUN_JS = """(async () => {
  PANEL
  await w.sessionContext.ready;
  w.content.activeCellIndex = CELL;
  return await app.commands.execute('notebook:run-cell');
})()""".replace("PANEL", PANEL_JS)


def settings_dir(tmp: Path) -> Path:
    """User settings: every cell in the DOM (no windowing), no autosave, no news."""
    d = tmp / "settings"
    for plugin, values in {
        "notebook-extension/tracker": {"windowingMode": "none"},
        "docmanager-extension/plugin": {"autosave": False},
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        f = d / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values))
    return d


def start_lab(root: Path, tmp: Path, token: str, port: int):
    env = dict(os.environ)
    # A signature store of its own: no notebook is trusted, as on a fresh machine.
    env["JUPYTER_DATA_DIR"] = str(tmp / "data")
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "config")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings_dir(tmp))
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp / "workspaces")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False",
           # Containers and CI machines often run as root; JupyterLab refuses that unless told.
           "--allow-root"]
    log = open(tmp / "lab.log", "w")
    lab = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    def up():
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return True
        except OSError:
            return lab.poll() is not None and sys.exit(f"JupyterLab exited: {(tmp / 'lab.log').read_text()[-2000:]}")
    wait_for("JupyterLab to start", up, 120)
    return lab


def expected_figures(nb_path: Path):
    """Indices of the cells whose saved outputs hold a figure."""
    nb = json.loads(nb_path.read_text())
    figures = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            html = "".join(data.get("text/html", ""))
            if any(k in data for k in ("image/svg+xml", "image/png")) or "<svg" in html or "<img" in html:
                figures.append(i)
                break
    return nb, figures


def open_notebook(page: Page, port: int, token: str, rel: str, cells: int, timeout: int):
    page.call("Page.navigate", url=f"http://127.0.0.1:{port}/lab/tree/{rel}?token={token}&reset")
    last = {"state": None, "since": time.time()}

    def rendered():
        state = page.evaluate(CELLS_JS)
        if not state or len(state) != cells:
            return None
        # Outputs render asynchronously (images decode after insertion): wait until stable.
        if state != last["state"]:
            last.update(state=state, since=time.time())
            return None
        return state if time.time() - last["since"] > 3 else None
    return wait_for(f"{rel} to render its {cells} cells", rendered, timeout)


def check_figures(page, port, token, root: Path, rel: str, timeout: int) -> list:
    nb, figures = expected_figures(root / rel)
    state = open_notebook(page, port, token, rel, len(nb["cells"]), timeout)
    problems = []
    if any(c["trusted"] for c in state if c["code"]):
        problems.append(f"{rel}: JupyterLab trusts it; the check needs the unsigned view")
    missing = [i for i in figures if state[i]["images"] == 0]
    problems += [f"{rel}: cell {i} holds a figure but shows no image" for i in missing]
    shown = sum(1 for i in figures if state[i]["images"] > 0)
    inline_svg = sum(c["svg"] for c in state)
    print(f"{rel}: untrusted in JupyterLab, {shown}/{len(figures)} figure cells show their images "
          f"({sum(c['images'] for c in state)} images decoded, {inline_svg} inline SVGs left by the sanitiser)")
    return problems


def check_run(page, port, token, root: Path, spec: str, timeout: int) -> list:
    rel, n = spec.rsplit(":", 1)
    nb, _ = expected_figures(root / rel)
    before = hashlib.sha256((root / rel).read_bytes()).hexdigest()
    open_notebook(page, port, token, rel, len(nb["cells"]), timeout)
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"][: int(n)]
    started = time.time()
    for i in code:
        if page.evaluate(RUN_JS.replace("CELL", str(i))) is not True:
            return [f"{rel}: cell {i} did not run through JupyterLab"]
    # The last output lands after the execute reply: give the DOM a moment.
    state = wait_for("the run's outputs", lambda: (lambda s: s if s and s[code[-1]]["images"] else None)(
        page.evaluate(CELLS_JS)), 60)
    problems = [f"{rel}: cell {i} wrote an error" for i in code if state[i]["errors"]]
    tables = sum(state[i]["tables"] for i in code)
    images = sum(state[i]["images"] for i in code)
    if not tables or not images:
        problems.append(f"{rel}: after the run, {tables} tables and {images} images below the cells")
    if hashlib.sha256((root / rel).read_bytes()).hexdigest() != before:
        problems.append(f"{rel}: the file changed on disk during the check")
    print(f"{rel}: {len(code)} code cells run through JupyterLab's run command on its kernel in "
          f"{time.time() - started:.0f} s: {tables} tables and {images} images appeared, no errors"
          if not problems else f"{rel}: the run failed")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--run", help="NOTEBOOK:N — run its first N code cells through JupyterLab")
    ap.add_argument("--timeout", type=int, default=180)
    args = ap.parse_args()
    root = args.root.resolve()
    token = os.urandom(16).hex()
    problems = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        tmp = Path(tmp)
        port = free_port()
        lab = start_lab(root, tmp, token, port)
        browser, page = start_chromium(tmp)
        try:
            for rel in args.notebooks:
                problems += check_figures(page, port, token, root, rel, args.timeout)
            if args.run:
                problems += check_run(page, port, token, root, args.run, args.timeout)
        finally:
            browser.terminate()
            browser.wait(timeout=30)
            lab.terminate()
            lab.wait(timeout=30)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
