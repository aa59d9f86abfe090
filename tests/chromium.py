"""Render a page with headless Chromium (Debian's `chromium` package): its DOM text, a screenshot.

`--dump-dom` with a virtual-time budget lets a single-page app fetch and render before the DOM is
printed; `dom_text` retries with a larger budget until the expected strings are there.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

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
