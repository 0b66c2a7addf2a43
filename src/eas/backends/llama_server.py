"""Start a local llama.cpp server (``llama-cpp-python[server]``) for a GGUF model.

Used by the server tests and the backend benchmark, and handy to try the ``openai``
backend without a GPU: ``with local_llama_server() as url: ...`` serves the embedded
SmolLM2 GGUF on 127.0.0.1 at a free port and stops it on exit.

Flags that matter for EAS (llama-cpp-python 0.3): ``--logits_all True`` (the default;
needed for ``logprobs``), ``--n_ctx`` (the probe contexts must fit), one model, one
request at a time; its prefix reuse keeps the KV cache of the previous request, so probes
of one trace sent in order of t are cheap.
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


def _wait_ready(proc: subprocess.Popen, url: str, timeout_s: float, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the llama.cpp server exited with status {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the llama.cpp server at {url} was not ready after {timeout_s:.0f} s")


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
        from eas.backends.embedded import gguf_path

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
    with tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False) as logf:
        log_path = Path(logf.name)
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(proc, url, ready_timeout_s, log_path)
        log.info("llama.cpp server for %s ready at %s (pid %d)", Path(gguf).name, url, proc.pid)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log_path.unlink(missing_ok=True)
