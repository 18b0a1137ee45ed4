"""Serving throughput and latency on loopback, `lab serve` beside the FastAPI + uvicorn +
onnxruntime server a student would write (scripts/serve_fastapi.py), same ONNX network,
same PNG request, same machine, one run. The load generator is `hey` (Debian's package,
`scripts/setup serve-tools`), for a fixed duration at concurrency 1, 8 and 64. Memory is
the peak resident size (VmHWM) of the server's processes during the run.

usage: bench_serve.py [--lab target/release/lab] [--run RUN_DIR] [--seconds 5] [--out FILE.json]
  without --run, trains the default config's network for one epoch on 3000 images
  (throughput depends on the network, not on how well it was trained)
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from check_serve import start_server, train

REPO = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8, 64)


def hey(url, body, concurrency, seconds):
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(concurrency), "-m", "POST",
                          "-T", "image/png", "-D", str(body), url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {int(p): float(s) * 1000 for p, s in re.findall(r"(\d+)%% in ([\d.]+) secs".replace("%%", "%"), out)}
    codes = dict((int(c), int(n)) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    return {"rps": rps, "p50_ms": pct.get(50), "p99_ms": pct.get(99), "codes": codes}


def tree_hwm(pid):
    """Peak resident MiB of a process and its children (uvicorn workers)."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]
    total = 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
    return total / 1024


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing listens on port {port}")


def measure(name, url, body, seconds, pid):
    hey(url, body, 8, 1)  # warm-up
    rows = []
    for c in CONCURRENCY:
        r = hey(url, body, c, seconds)
        r.update(server=name, concurrency=c, rss_mib=tree_hwm(pid))
        rows.append(r)
        print(f"{name:<24} c={c:<3} {r['rps']:>8.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
              f"  codes {r['codes']}  peak RSS {r['rss_mib']:.0f} MiB", flush=True)
    return rows


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", default=str(REPO / "target/release/lab"))
    ap.add_argument("--run")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    run = Path(args.run) if args.run else train(args.lab, tmp / "runs")
    onnx = tmp / "model.onnx"
    subprocess.run([args.lab, "export", "--run", str(run), "--out", str(onnx)], check=True, stdout=subprocess.DEVNULL)
    print(f"cpu: {cpu_name()}; {os.cpu_count()} cores; network of {run}", flush=True)
    rows = []
    proc, base = start_server(args.lab, run, tmp / "serving")
    try:
        sample = tmp / "sample.png"
        sample.write_bytes(urllib.request.urlopen(base + "/samples/1").read())
        rows += measure("lab serve (ort)", base + "/predict", sample, args.seconds, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    for workers in (1, 2):
        port = free_port()
        py = subprocess.Popen([sys.executable, str(REPO / "scripts/serve_fastapi.py"), "--onnx", str(onnx),
                               "--run", str(run), "--port", str(port), "--workers", str(workers)])
        try:
            wait_port(port)
            rows += measure(f"FastAPI+uvicorn ({workers} worker{'s' if workers > 1 else ''})",
                            f"http://127.0.0.1:{port}/predict", sample, args.seconds, py.pid)
        finally:
            py.send_signal(signal.SIGTERM)
            py.wait()
    print_ratios(rows)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


def print_ratios(rows):
    lab = {r["concurrency"]: r for r in rows if r["server"].startswith("lab")}
    for r in rows:
        if r["server"].startswith("lab"):
            continue
        l = lab[r["concurrency"]]
        print(f"c={r['concurrency']:<3} lab / {r['server']}: throughput ×{l['rps'] / r['rps']:.2f}, "
              f"p99 {l['p99_ms']:.2f} vs {r['p99_ms']:.2f} ms")


def cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
