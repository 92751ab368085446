"""Open a page in headless Chromium and watch it through the DevTools protocol (over a pipe: no port,
no websocket library): every request the page makes, a screenshot, and values read from the DOM.

Used by the browser test of the HTML report and by docs/report_screenshot.py.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = "apt-get install -y chromium (as .ci/run does)"


def find_chromium() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageVisit:
    requests: list[str] = field(default_factory=list)
    """The URL of every request the page made (the page itself first; Chromium counts the data: URIs of
    embedded images as requests too, shortened here to their first 40 characters)."""
    failed: list[str] = field(default_factory=list)
    """Requests that failed, with the error text."""
    screenshot: bytes = b""
    """PNG of the whole page."""
    values: dict[str, object] = field(default_factory=dict)
    """What each expression of `evaluate` gave once the page had loaded."""


class _Pipe:
    """The DevTools protocol over --remote-debugging-pipe: JSON messages separated by NUL bytes."""

    def __init__(self, to_browser: int, from_browser: int):
        self.to_browser, self.from_browser = to_browser, from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.receive(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def receive(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def wait_for(self, method: str, session: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            event = self.receive(deadline)
            if event.get("method") == method and event.get("sessionId") == session:
                return event
            self.events.append(event)


def visit(page: Path, evaluate: dict[str, str] | None = None, width: int = 1200, settle: float = 0.5,
          chromium: str | None = None) -> PageVisit:
    """Load `page` (a file) in a fresh headless Chromium profile; record requests, screenshot, values.

    Every host name resolves to nothing and every proxy is refused, so a page that tried to fetch
    something would also fail visibly; the requests are recorded either way.
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError(f"chromium not found: {INSTALL}")
    to_read, to_write = os.pipe()      # commands: we write, chromium reads fd 3
    from_read, from_write = os.pipe()  # answers: chromium writes fd 4, we read
    profile = tempfile.mkdtemp(prefix="convdiff-chromium-")
    args = [chromium, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", f"--user-data-dir={profile}",
            f"--window-size={width},900", "about:blank"]

    def child_fds() -> None:  # chromium talks DevTools on fds 3 (in) and 4 (out)
        commands, answers = fcntl.fcntl(to_read, fcntl.F_DUPFD, 10), fcntl.fcntl(from_write, fcntl.F_DUPFD, 10)
        os.dup2(commands, 3)
        os.dup2(answers, 4)

    proc = subprocess.Popen(args, preexec_fn=child_fds, close_fds=False, stdout=subprocess.DEVNULL,  # noqa: PLW1509
                            stderr=subprocess.DEVNULL)
    os.close(to_read)
    os.close(from_write)
    pipe = _Pipe(to_write, from_read)
    result = PageVisit()
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        pipe.send("Network.enable", session=session)
        pipe.send("Page.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired", session)
        time.sleep(settle)  # anything the page would fetch after load
        pipe.send("Runtime.enable", session=session)
        for name, expression in (evaluate or {}).items():
            answer = pipe.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
            result.values[name] = answer.get("result", {}).get("value")
        shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session,
                         timeout=60)
        result.screenshot = base64.b64decode(shot["data"])
        for event in pipe.events:
            if event.get("method") == "Network.requestWillBeSent":
                url = event["params"]["request"]["url"]
                result.requests.append(url[:40] + "..." if url.startswith("data:") else url)
            elif event.get("method") == "Network.loadingFailed":
                result.failed.append(event["params"].get("errorText", ""))
        try:
            pipe.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError):
            pass
    finally:
        os.close(to_write)
        os.close(from_read)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return result
