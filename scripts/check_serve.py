"""`lab serve` end to end with the real tools its users have: trains a small Fashion-MNIST
run, starts the server, and checks
  - the demo page in headless Chromium: a PNG picked in the file input is classified, the
    top-k bars and the Grad-CAM overlay appear, and the label is the one POST /predict gives;
  - /metrics after traffic is accepted by `promtool check metrics` (Prometheus' own linter);
  - a 50 MB body and a flood of 256 concurrent requests get 413 / 200-or-503, the server
    stays up and its memory stays bounded;
  - kill -9 under load: every line of predictions.jsonl and .csv is whole, and every
    prediction a client received is in both logs.

usage: check_serve.py --lab target/release/lab [--keep DIR]
"""
import argparse
import base64
import concurrent.futures as futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cdp import start_chromium, wait_for

REPO = Path(__file__).resolve().parent.parent


def request(url, body=None, content_type="image/png", timeout=30):
    """(status, body bytes) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def train(lab, root):
    subprocess.run([lab, "train", "--config", str(REPO / "configs/fashion_mnist.toml"), "--root", str(root),
                    "--name", "serve_check", "--epochs", "1", "--force",
                    "--set", "data.train_limit=3000", "--set", "data.test_limit=1000"],
                   check=True, stdout=subprocess.DEVNULL)
    return root / "serve_check"


def start_server(lab, run, log_dir):
    proc = subprocess.Popen([lab, "serve", "--run", str(run), "--port", "0", "--log-dir", str(log_dir),
                             "--drift-window", "100", "--drift-every", "50", "--drift-min-interval-s", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The run's state and load notes come first (stderr), then the address line.
    seen = []
    while True:
        line = proc.stdout.readline()
        seen.append(line)
        match = re.search(r"on (http://[0-9.:]+)", line)
        if match:
            break
        if not line or len(seen) > 50:  # exited, or talking without ever serving
            proc.kill()
            sys.exit(f"lab serve did not start: {''.join(seen)}")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, match.group(1)


def check_page(base, sample_png, tmp):
    browser, page = start_chromium(tmp)
    try:
        page.call("Page.enable")
        page.call("DOM.enable")
        page.call("Page.navigate", url=base + "/")
        wait_for("the sample gallery", lambda: page.evaluate(
            "document.querySelectorAll('#samples img').length"), 30)
        root = page.call("DOM.getDocument")["root"]["nodeId"]
        node = page.call("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
        page.call("DOM.setFileInputFiles", nodeId=node, files=[str(sample_png)])
        label = wait_for("the prediction on the page", lambda: page.evaluate(
            "document.getElementById('result').dataset.label"), 30)
        bars = page.evaluate("document.querySelectorAll('#bars .bar').length")
        overlay = wait_for("the Grad-CAM overlay", lambda: page.evaluate(
            "(() => { const i = document.getElementById('overlay'); return i.complete && i.naturalWidth; })()"), 30)
        shot = page.call("Page.captureScreenshot", format="png")["data"]
        (tmp / "demo_page.png").write_bytes(base64.b64decode(shot))
        return label, bars, overlay
    finally:
        browser.kill()


def metrics_value(text, name):
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def oversized_status(base, size):
    """Status of a POST of a `size`-byte body, sent MiB by MiB until the server answers
    (it must refuse once its limit is passed, without buffering the rest)."""
    url = urllib.parse.urlparse(base)
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:
        s.sendall(f"POST /predict HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: image/png\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode())
        try:
            for _ in range(size >> 20):
                s.sendall(b"\0" * (1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer is waiting
        return int(s.recv(4096).split()[1])


def check_flood(base, png):
    status = oversized_status(base, 50 << 20)
    assert status == 413, f"50 MB body: {status}"
    with futures.ThreadPoolExecutor(256) as pool:
        statuses = list(pool.map(lambda _: request(base + "/predict", png)[0], range(1024)))
    counts = {s: statuses.count(s) for s in set(statuses)}
    assert set(counts) <= {200, 503}, f"flood statuses {counts}"
    status, _ = request(base + "/health")
    assert status == 200, "server down after the flood"
    return counts


def check_kill(proc, base, png, log_dir):
    """(answered, new JSONL lines, new CSV rows) of a load killed by SIGKILL."""
    jsonl_before = (log_dir / "predictions.jsonl").read_bytes().count(b"\n")
    csv_before = (log_dir / "predictions.csv").read_text().count("\n") - 1
    answered, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            try:
                status, body = request(base + "/predict", png, timeout=5)
            except OSError:
                return
            if status == 200:
                answered.append(json.loads(body))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    lines = (log_dir / "predictions.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"", "predictions.jsonl ends inside a line"
    records = [json.loads(line) for line in lines[:-1]]
    csv = (log_dir / "predictions.csv").read_text().split("\n")
    assert csv[-1] == "", "predictions.csv ends inside a line"
    rows = [r.split(",") for r in csv[1:-1]]
    assert all(len(r) == 9 for r in rows), "a CSV row is torn"
    return len(answered), len(records) - jsonl_before, len(rows) - csv_before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", default=str(REPO / "target/release/lab"))
    ap.add_argument("--keep", help="folder to keep the run, logs and the page screenshot in")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp())
    tmp.mkdir(parents=True, exist_ok=True)
    run = train(args.lab, tmp / "runs")
    log_dir = tmp / "serving"
    proc, base = start_server(args.lab, run, log_dir)
    try:
        status, sample = request(base + "/samples/1")
        assert status == 200, status
        (tmp / "sample.png").write_bytes(sample)
        status, body = request(base + "/predict", sample)
        assert status == 200, body
        expected = json.loads(body)["predictions"][0][0]["label"]
        label, bars, overlay = check_page(base, tmp / "sample.png", tmp)
        assert label == expected and bars == 5 and overlay > 0, (label, expected, bars, overlay)
        print(f"demo page: {label!r} with {bars} bars and a {overlay}px Grad-CAM overlay, as POST /predict says")
        for i in range(8):
            request(base + "/predict", request(base + f"/samples/{i}")[1])
        rss_before = metrics_value(request(base + "/metrics")[1].decode(), "process_resident_memory_bytes")
        counts = check_flood(base, sample)
        text = request(base + "/metrics")[1].decode()
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert lint.returncode == 0, f"promtool: {lint.stdout}{lint.stderr}"
        rss_after = metrics_value(text, "process_resident_memory_bytes")
        print(f"flood of 1024 requests from 256 threads: {counts}; 50 MB body: 413; "
              f"memory {rss_before / 2**20:.0f} → {rss_after / 2**20:.0f} MiB")
        print(f"promtool check metrics: OK ({len(text.splitlines())} lines)")
        answered, logged, rows = check_kill(proc, base, sample, log_dir)
        assert logged >= answered and rows >= answered, (answered, logged, rows)
        print(f"kill -9 under load: {answered} answered, {logged} JSONL lines and {rows} CSV rows, all whole")
    finally:
        if proc.poll() is None:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
