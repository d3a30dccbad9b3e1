"""Open a report in a real headless Chromium and record what the browser did.

Used by the browser test (``homicide_assets_tests/test_report.py``) and by
``scripts/report_screenshots.py``. Talks the Chrome DevTools Protocol over a websocket
(the ``websockets`` package): every console message, log entry, uncaught exception and
network request of the page is recorded, and screenshots are taken by the browser itself.

Chromium is started with ``--headless --no-sandbox --disable-gpu
--disable-background-networking --disable-component-update --no-first-run`` and a
throwaway ``--user-data-dir``, so nothing the browser does on its own (updates, safe
browsing, sign-in) is mistaken for the page's traffic. On Debian: ``apt-get install -y
chromium`` (:func:`ensure_chromium`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) binary on PATH, or ``CHROMIUM`` from the environment."""
    explicit = os.environ.get("CHROMIUM")
    if explicit and Path(explicit).exists():
        return explicit
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """Chromium's path, installing Debian's ``chromium`` package with apt when missing.

    Raises ``RuntimeError`` naming what failed (no apt, not root, the install's output).
    """
    path = find_chromium()
    if path:
        return path
    apt = shutil.which("apt-get")
    if not apt:
        raise RuntimeError("chromium is not installed and apt-get is not available to install it")
    if os.geteuid() != 0:
        raise RuntimeError("chromium is not installed; run as root (or: sudo apt-get install -y chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "chromium"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    path = find_chromium()
    if not path:
        raise RuntimeError("apt-get installed chromium but no chromium binary is on PATH")
    return path


@dataclass
class PageVisit:
    """What happened when a page was opened."""

    url: str
    console: list[dict] = field(default_factory=list)  # Runtime.consoleAPICalled
    log: list[dict] = field(default_factory=list)  # Log.entryAdded
    exceptions: list[dict] = field(default_factory=list)  # Runtime.exceptionThrown
    requests: list[str] = field(default_factory=list)  # every URL the page requested
    screenshots: dict[str, bytes] = field(default_factory=dict)
    evaluations: dict[str, object] = field(default_factory=dict)
    loaded: bool = False

    @property
    def errors(self) -> list[str]:
        """Console errors, error log entries and uncaught exceptions, as text."""
        out = [
            f"console.{m.get('type')}: {' '.join(str(a.get('value', a.get('description', ''))) for a in m.get('args', []))}"
            for m in self.console
            if m.get("type") in ("error", "assert")
        ]
        out += [
            f"log {e.get('source')}: {e.get('text')} {e.get('url', '')}"
            for e in self.log
            if e.get("level") == "error"
        ]
        out += [f"exception: {e.get('exceptionDetails', {}).get('text')}" for e in self.exceptions]
        return out

    @property
    def network_requests(self) -> list[str]:
        """Requests other than the page's own file: anything here went (or tried to go) out."""
        return [u for u in self.requests if u != self.url]


class Chromium:
    """A headless Chromium with remote debugging on a free port; a context manager."""

    def __init__(self, binary: str | None = None, extra_flags: tuple[str, ...] = ()):
        self.binary = binary or ensure_chromium()
        self.extra_flags = extra_flags
        self.proc: subprocess.Popen | None = None
        self.profile: str | None = None
        self.ws_url: str | None = None
        self.stderr_path: Path | None = None

    def __enter__(self) -> Chromium:
        self.profile = tempfile.mkdtemp(prefix="report_chromium_")
        self.stderr_path = Path(self.profile) / "stderr.log"
        cmd = [
            self.binary,
            *CHROMIUM_FLAGS,
            *self.extra_flags,
            f"--user-data-dir={self.profile}",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            "about:blank",
        ]
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    self.ws_url = f"ws://127.0.0.1:{lines[0]}{lines[1]}"
                    break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.ws_url:
            self.__exit__(None, None, None)
            raise RuntimeError(
                f"chromium did not start: {self.stderr_path.read_text(errors='replace')[-2000:]}"
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_stderr", None):
            self._stderr.close()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)

    def visit(
        self,
        path: Path,
        width: int = 1280,
        height: int = 900,
        screenshots: dict[str, dict] | None = None,
        evaluate: dict[str, str] | None = None,
        settle_seconds: float = 0.5,
    ) -> PageVisit:
        """Open ``path`` (a local file), record everything, take ``screenshots``.

        ``screenshots`` maps a name to ``{"full": True}`` (the whole page) or a clip
        ``{"x":, "y":, "width":, "height":}`` in CSS pixels, or ``{"selector": css}``.
        ``evaluate`` maps a name to a JavaScript expression run in the page.
        """
        return asyncio.run(
            self._visit(
                Path(path).resolve().as_uri(),
                width,
                height,
                screenshots or {},
                evaluate or {},
                settle_seconds,
            )
        )

    async def _visit(
        self, url: str, width: int, height: int, shots: dict, evaluate: dict, settle_seconds: float
    ) -> PageVisit:
        import websockets

        visit = PageVisit(url=url)
        async with websockets.connect(self.ws_url, max_size=None) as ws:
            counter = 0
            pending: dict[int, asyncio.Future] = {}
            loaded = asyncio.Event()
            session: str | None = None

            async def reader():
                async for raw in ws:
                    msg = json.loads(raw)
                    if "id" in msg and msg["id"] in pending:
                        pending.pop(msg["id"]).set_result(msg)
                        continue
                    method, params = msg.get("method"), msg.get("params", {})
                    if method == "Runtime.consoleAPICalled":
                        visit.console.append(params)
                    elif method == "Log.entryAdded":
                        visit.log.append(params.get("entry", {}))
                    elif method == "Runtime.exceptionThrown":
                        visit.exceptions.append(params)
                    elif method == "Network.requestWillBeSent":
                        visit.requests.append(params.get("request", {}).get("url", ""))
                    elif method == "Page.loadEventFired":
                        loaded.set()

            task = asyncio.create_task(reader())

            async def send(method: str, params: dict | None = None, in_session: bool = True) -> dict:
                nonlocal counter
                counter += 1
                fut = asyncio.get_running_loop().create_future()
                pending[counter] = fut
                msg = {"id": counter, "method": method, "params": params or {}}
                if in_session and session:
                    msg["sessionId"] = session
                await ws.send(json.dumps(msg))
                reply = await asyncio.wait_for(fut, timeout=60)
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

            target = await send("Target.createTarget", {"url": "about:blank"}, in_session=False)
            attached = await send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, in_session=False
            )
            session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                await send(f"{domain}.enable")
            await send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            await send("Page.navigate", {"url": url})
            try:
                await asyncio.wait_for(loaded.wait(), timeout=60)
                visit.loaded = True
            except TimeoutError:
                visit.loaded = False
            await asyncio.sleep(settle_seconds)
            for name, expr in evaluate.items():
                res = await send("Runtime.evaluate", {"expression": expr, "returnByValue": True})
                visit.evaluations[name] = res.get("result", {}).get("value")
            for name, spec in shots.items():
                params: dict = {"format": "png", "captureBeyondViewport": True}
                if spec.get("selector"):
                    selector = json.dumps(spec["selector"])
                    box = await send(
                        "Runtime.evaluate",
                        {
                            "expression": (
                                "(() => { const r = document.querySelector("
                                + selector
                                + ").getBoundingClientRect();"
                                " return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width,"
                                " height: r.height}; })()"
                            ),
                            "returnByValue": True,
                        },
                    )
                    spec = {**box["result"]["value"], **{k: v for k, v in spec.items() if k != "selector"}}
                if spec.get("full"):
                    metrics = await send("Page.getLayoutMetrics")
                    size = metrics.get("cssContentSize") or metrics.get("contentSize")
                    params["clip"] = {
                        "x": 0,
                        "y": 0,
                        "width": width,
                        "height": min(size["height"], spec.get("max_height", size["height"])),
                        "scale": 1,
                    }
                elif "x" in spec:
                    params["clip"] = {
                        "x": spec["x"],
                        "y": spec["y"],
                        "width": spec["width"],
                        "height": spec["height"],
                        "scale": spec.get("scale", 1),
                    }
                shot = await send("Page.captureScreenshot", params)
                visit.screenshots[name] = base64.b64decode(shot["data"])
            await send("Target.closeTarget", {"targetId": target["targetId"]}, in_session=False)
            task.cancel()
        return visit
