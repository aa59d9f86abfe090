"""Render a page with headless Chromium (Debian's `chromium` package): its DOM text, a screenshot.

`--dump-dom` with a virtual-time budget lets a single-page app fetch and render before the DOM is
printed; `dom_text` retries with a larger budget until the expected strings are there.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
)  # fmt: skip


def available() -> bool:
    return Path(CHROMIUM).is_file() or shutil.which("chromium") is not None


def _binary() -> str:
    return CHROMIUM if Path(CHROMIUM).is_file() else (shutil.which("chromium") or CHROMIUM)


def _run(args: Sequence[str], budget_ms: int, timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="radar-chromium-") as profile:
        command = [
            _binary(), *FLAGS, f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}", *args,
        ]  # fmt: skip
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = "", f"chromium did not finish in {timeout} s"
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # renderer, GPU and zygote helpers too
            proc.wait()
        return subprocess.CompletedProcess(command, proc.returncode, out, err)


def visible_text(dom: str) -> str:
    """The text of an HTML document, scripts and styles left out, whitespace collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return re.sub(r"\s+", " ", text).strip()


# No network at all: every host name fails to resolve and every request goes to a dead proxy.
OFFLINE = ("--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND")


def dom(
    url: str, *, flags: Sequence[str] = (), budget_ms: int = 15_000, timeout: float = 90
) -> str:
    """The page's DOM (HTML, inline SVG included) after rendering; "" if chromium failed."""
    done = _run([*flags, "--dump-dom", url], budget_ms, timeout)
    return done.stdout if done.returncode == 0 else ""


def dom_text(
    url: str,
    *,
    expect: Sequence[str] = (),
    budgets: Sequence[int] = (15_000, 30_000, 60_000),
    timeout: float = 90,
    flags: Sequence[str] = (),
) -> str:
    """The page's rendered text; retried with larger virtual-time budgets until every `expect`
    string is in it (returns the last text either way, so the caller's assert shows it)."""
    text = ""
    for budget in budgets:
        done = _run([*flags, "--dump-dom", url], budget, timeout)
        text = visible_text(done.stdout)
        if done.returncode == 0 and all(e in text for e in expect):
            return text
    return text


def screenshot(
    url: str,
    path: Path,
    *,
    size: str = "1400,1000",
    budget_ms: int = 15_000,
    flags: Sequence[str] = (),
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    done = _run([*flags, f"--screenshot={path}", f"--window-size={size}", url], budget_ms, 90)
    if done.returncode != 0 or not path.is_file():
        raise AssertionError(
            f"chromium --screenshot failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return path


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (AssertionError if it is not a PNG)."""
    data = path.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# -- a page visited through the DevTools protocol: console, requests, screenshot ------------------


@dataclass
class Visit:
    """What a page did while it loaded: console messages and errors as (level, text), every URL
    it requested (its own included), its rendered text, and a screenshot if one was asked for."""

    console: list[tuple[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    text: str = ""
    scroll_width: int = 0  # the document's width: more than the viewport's scrolls sideways

    @property
    def errors(self) -> list[str]:
        return [text for level, text in self.console if level in ("error", "assert")]


def visit(
    url: str,
    *,
    width: int = 1400,
    height: int = 1000,
    mobile: bool = False,
    screenshot: Path | None = None,
    settle: float = 0.5,
    timeout: float = 60,
    flags: Sequence[str] = OFFLINE,
) -> Visit:
    """Load `url` in a `width`×`height` viewport (`mobile`: a phone's) over the DevTools pipe;
    `screenshot`: the whole page as a PNG there. Raises AssertionError when Chromium fails."""
    with tempfile.TemporaryDirectory(prefix="radar-chromium-") as profile:
        command = [_binary(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                   *flags, "about:blank"]  # fmt: skip
        to_chrome, from_chrome = os.pipe(), os.pipe()  # Chromium reads fd 3, writes fd 4

        def fds() -> None:
            os.dup2(to_chrome[0], 3)
            os.dup2(from_chrome[1], 4)

        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=fds, start_new_session=True,
        )  # fmt: skip
        os.close(to_chrome[0])
        os.close(from_chrome[1])
        try:
            return _Session(to_chrome[1], from_chrome[0], time.monotonic() + timeout).visit(
                url, width, height, mobile, screenshot, settle
            )
        finally:
            for fd in (to_chrome[1], from_chrome[0]):
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class _Session:
    """One page target over Chromium's `--remote-debugging-pipe` (NUL-separated JSON)."""

    def __init__(self, write_fd: int, read_fd: int, deadline: float) -> None:
        self.write_fd, self.deadline = write_fd, deadline
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.next_id = 0
        self.session: str | None = None
        threading.Thread(target=self._read, args=(read_fd,), daemon=True).start()

    def _read(self, fd: int) -> None:
        buffer = b""
        while chunk := _read_some(fd):
            buffer += chunk
            *whole, buffer = buffer.split(b"\0")
            for raw in whole:
                self.messages.put(json.loads(raw))
        self.messages.put(None)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next(self.deadline)
            if reply is None:
                raise AssertionError(f"chromium went away during {method}")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def _next(self, until: float) -> dict[str, Any] | None:
        left = until - time.monotonic()
        if left <= 0:
            raise AssertionError("chromium did not answer in time")
        try:
            return self.messages.get(timeout=left)
        except queue.Empty:
            raise AssertionError("chromium did not answer in time") from None

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            event = self._next(self.deadline)
            if event is None:
                raise AssertionError(f"chromium went away before {method}")
            self.events.append(event)

    def drain(self, seconds: float) -> None:
        until = min(time.monotonic() + seconds, self.deadline)
        with contextlib.suppress(AssertionError):
            while (event := self._next(until)) is not None:
                self.events.append(event)

    def visit(
        self, url: str, width: int, height: int, mobile: bool, shot: Path | None, settle: float
    ) -> Visit:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})  # fmt: skip
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        self.drain(settle)
        text, scroll = (
            self.call("Runtime.evaluate", {"expression": js, "returnByValue": True})["result"].get(
                "value", ""
            )
            for js in ("document.body.innerText", "document.documentElement.scrollWidth")
        )
        if shot is not None:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": width, "height": max(height, size["height"]),
                    "scale": 1}  # fmt: skip
            data = self.call("Page.captureScreenshot",
                             {"format": "png", "captureBeyondViewport": True, "clip": clip})  # fmt: skip
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.write_bytes(base64.b64decode(data["data"]))
        seen = _seen(self.events, str(text))
        seen.scroll_width = int(scroll or 0)
        return seen


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 16)
    except OSError:
        return b""


def _seen(events: list[dict[str, Any]], text: str) -> Visit:
    seen = Visit(text=text)
    for event in events:
        params = event.get("params", {})
        method = event.get("method")
        if method == "Runtime.consoleAPICalled":
            words = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            seen.console.append((params.get("type", "log"), " ".join(words)))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            described = details.get("exception", {}).get("description") or details.get("text", "")
            seen.console.append(("error", str(described)))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            seen.console.append((entry.get("level", "info"), str(entry.get("text", ""))))
        elif method == "Network.requestWillBeSent":
            seen.requests.append(str(params.get("request", {}).get("url", "")))
    return seen
