"""Headless Chromium driven through the DevTools protocol (CDP) over its websocket: the
browser the page checks open (scripts/check_jupyterlab.py, scripts/check_serve.py).
Debian's chromium (`scripts/setup chromium`), started with a fresh profile and the
flags a closed network needs."""
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import websocket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, probe, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    sys.exit(f"timed out after {timeout} s waiting for {what}")


class Page:
    """One Chromium tab driven through the DevTools protocol."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=600)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    sys.exit(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, js):
        r = self.call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            sys.exit(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")


def start_chromium(tmp: Path):
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if not exe:
        sys.exit("no Chromium found: run `scripts/setup chromium` (installs Debian's chromium)")
    profile = tmp / "chromium"
    cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-quic",
           "--remote-allow-origins=*",
           f"--user-data-dir={profile}", "--window-size=1400,1000", "about:blank"]
    browser = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    written = lambda: port_file.exists() and port_file.read_text().strip()  # noqa: E731
    port = int(wait_for("Chromium's DevTools port", written, 60).split()[0])
    targets = wait_for("a page target", lambda: [
        t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        if t["type"] == "page"], 30)
    return browser, Page(targets[0]["webSocketDebuggerUrl"])
