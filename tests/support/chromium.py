"""Headless Chromium for the view's tests, its benchmark and the README screenshot.

Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) runs
headless as root with ``--no-sandbox``. ``dump_dom`` prints the DOM after the page's
scripts ran (load event, plus ``--virtual-time-budget`` ms of virtual time so timers and
animation frames run too); ``screenshot`` writes a PNG of the window; ``read_png``
decodes it with the standard library. Each call starts a fresh browser with a
throw-away profile (about 1-2 s on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary (``$CHROMIUM`` first), or ``None``."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium found: apt-get install chromium (or set $CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="eas-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def page_url(path: str | Path, fragment: str = "") -> str:
    """``file://`` URL of a local page, with an optional ``#fragment``."""
    return Path(path).resolve().as_uri() + (fragment if not fragment or fragment.startswith("#") else "#" + fragment)


def dump_dom(url: str, budget_ms: int | None = None, timeout: float = 30.0) -> str:
    """Serialized DOM of ``url`` after its scripts ran (``--dump-dom``).

    Without ``budget_ms`` the DOM is dumped at the load event (the view's script runs
    before it) and ``performance.now()`` is real time; with it, Chromium also runs
    ``budget_ms`` of *virtual* time (timers, paint timing), and page clocks are virtual.
    """
    budget = [f"--virtual-time-budget={budget_ms}"] if budget_ms else []
    proc = _run([*budget, "--dump-dom", url], timeout)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"chromium --dump-dom failed ({proc.returncode}): {proc.stderr[-500:]}")
    return proc.stdout


def screenshot(
    url: str, png: str | Path, size: tuple[int, int] = (1200, 900), budget_ms: int = 2000, timeout: float = 30.0
) -> Path:
    """Write a PNG screenshot of ``url`` at ``size`` (width, height) pixels."""
    out = Path(png).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    args = [f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url]
    proc = _run(args, timeout)
    if not out.exists():
        raise RuntimeError(f"chromium --screenshot wrote nothing ({proc.returncode}): {proc.stderr[-500:]}")
    return out


def read_png(path: str | Path) -> tuple[int, int, int, bytes]:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG: ``(width, height, channels, pixels)``.

    Standard library only (slow, about 1 s for 1200x900): for tests, not for images at scale.
    """
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {2: 3, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError("only 8-bit non-interlaced RGB/RGBA PNGs are supported")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + (left + prev[i]) // 2) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prev[i], prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y * stride : (y + 1) * stride] = line
        prev = line
    return width, height, channels, bytes(out)


def colour_stats(path: str | Path, step: int = 7) -> tuple[int, float]:
    """Distinct colours and the grey-level standard deviation over every ``step``-th pixel."""
    width, height, channels, px = read_png(path)
    colours, greys = set(), []
    for i in range(0, width * height, step):
        r, g, b = px[i * channels : i * channels + 3]
        colours.add((r, g, b))
        greys.append((r + g + b) / 3)
    mean = sum(greys) / len(greys)
    return len(colours), (sum((x - mean) ** 2 for x in greys) / len(greys)) ** 0.5
