"""Executes a notebook headless with the Rust (helpers) kernel, top to bottom, as
"restart and run all" does, then validates it with nbformat.

usage: run_notebook.py IN.ipynb OUT.ipynb [--timeout SECONDS]

The kernel starts in IN's folder, as JupyterLab starts it, so the notebook's relative
paths (`:dep helpers = { path = "helpers" }` at the root, `"../helpers"` in notebooks/)
resolve whichever folder OUT is written to. OUT is written atomically; a failing cell
stops the run with the cell's error and leaves OUT untouched.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

KERNEL = os.environ.get("KERNEL_NAME", "rust-helpers")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--timeout", type=int, default=3600, help="per-cell limit, seconds")
    args = ap.parse_args()

    nb = nbformat.read(args.src, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=args.timeout,
        resources={"metadata": {"path": str(Path(args.src).resolve().parent)}},
    )
    started = time.time()
    try:
        client.execute()
    except CellExecutionError as err:
        report_stderr(nb, args.src)  # an earlier `?` error is usually the real cause
        print(f"notebook {args.src}: a cell failed after {time.time() - started:.0f} s:\n{err}", file=sys.stderr)
        return 1
    if report_stderr(nb, args.src):
        return 1
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Rust (helpers)", "language": "rust"}
    nbformat.validate(nb)
    tmp = Path(args.dst).with_suffix(".ipynb.tmp")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, args.dst)
    cells = sum(1 for c in nb.cells if c.cell_type == "code")
    print(f"executed {cells} code cells of {args.src} in {time.time() - started:.0f} s -> {args.dst}")
    return 0


def report_stderr(nb, src) -> bool:
    """evcxr reports an `Err` returned through `?` as text on stderr, not as an error
    reply, so such a cell would otherwise pass: stderr or error outputs count as failure."""
    failed = False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        bad = [o for o in cell.get("outputs", []) if o.get("output_type") == "error" or o.get("name") == "stderr"]
        if bad:
            text = "".join(o.get("text", "") or f"{o.get('ename')}: {o.get('evalue')}" for o in bad)
            print(f"notebook {src}: cell {i} failed: {text.strip()}", file=sys.stderr)
            failed = True
    return failed


if __name__ == "__main__":
    sys.exit(main())
