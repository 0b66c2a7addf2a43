"""Any GGUF file as a transformers model folder: dequantized once, cached, checked, reused.

transformers loads a GGUF file by dequantizing every tensor to float (tens of seconds
for a few hundred million parameters, and several GB of memory at the peak). We do that
once per file and keep the result as safetensors (float32) plus the tokenizer and the
config, in ``cache_root()/gguf/<sha256 of the file>-float32-v1``. The key is the file's
content, not its name: a copy or a renamed file finds the same cache, and a changed file
(even at the same path) gets a new one.

The cache is built in a temporary folder next to the target and moved into place only
when complete, with a manifest of the SHA-256 of every file and of the source GGUF; a
cache whose files do not match their manifest (a partial copy, a corrupt file) is rebuilt.
An exclusive lock on ``<target>.lock`` makes concurrent builders (several processes or
Ray actors starting at once) build once: the others wait and then reuse the result.

Deliberate simplifications: the cache is always float32 (the model is then loaded in the
dtype asked for); every load hashes the GGUF file and the cached files (about 1 s per
GB), which keeps a silently corrupted cache from ever being used; no eviction (delete
the folder to reclaim the space). transformers decides which GGUF architectures it can
read; others fail with its own message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from eas.storage.jsontext import dumps

log = logging.getLogger(__name__)

MANIFEST = "eas-manifest.json"
# Bump when the cached layout or the conversion changes: old caches are then left alone
# and a new one is built next to them.
CACHE_VERSION = "float32-v1"


def cache_root() -> Path:
    """``$EAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/eas``, else ``~/.cache/eas``."""
    if os.environ.get("EAS_CACHE_DIR"):
        return Path(os.environ["EAS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eas"


def is_gguf_path(name: str) -> bool:
    """True when ``name`` names a GGUF file (by its extension; it need not exist yet)."""
    return name.lower().endswith(".gguf")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir_for(digest: str) -> Path:
    """The cache folder of the GGUF file whose SHA-256 is ``digest``."""
    return cache_root() / "gguf" / f"{digest}-{CACHE_VERSION}"


def cache_is_valid(folder: Path, gguf_sha256: str | None = None) -> bool:
    """True when every file named in the folder's manifest exists with its SHA-256 (and,
    when ``gguf_sha256`` is given, the manifest says it was built from that GGUF file)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        source = manifest.get("gguf_sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    if not isinstance(files, dict) or not files:
        return False
    if gguf_sha256 is not None and source != gguf_sha256:
        log.warning("model cache %s was built from another GGUF file", folder)
        return False
    for name, digest in files.items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            log.warning("model cache %s: %s is missing or corrupt", folder, name)
            return False
    return True


def dequantize(gguf: Path, out: Path) -> None:
    """Load ``gguf`` with transformers (dequantized to float32) and save it into ``out``
    as an ordinary model folder: safetensors, config, tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are plain float32 now; drop the GGUF "quantized" marking so that
    # transformers agrees to save them as an ordinary model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (POSIX ``flock``; no lock where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(gguf: Path, digest: str, target: Path) -> None:
    """Dequantize into a temporary folder next to ``target``, write the manifest, move it in."""
    size_gb = gguf.stat().st_size / 1e9
    log.info("dequantizing %s (%.2f GB) into %s, once ...", gguf.name, size_gb, target)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        dequantize(gguf, tmp)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"gguf_sha256": digest, "source": str(gguf), "version": CACHE_VERSION, "files": files}
        (tmp / MANIFEST).write_text(dumps(manifest, indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("model cache ready in %.0f s: %s", time.perf_counter() - started, target)


def gguf_model_dir(gguf: str | Path, rebuild: bool = False) -> Path:
    """The model folder (safetensors + tokenizer) of the GGUF file ``gguf``, built on first use."""
    path = Path(gguf).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no GGUF file at {path}")
    digest = sha256_file(path)
    target = cache_dir_for(digest)
    if not rebuild and cache_is_valid(target, digest):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.with_name(target.name + ".lock")):
        # Another process may have built it while we waited for the lock.
        if rebuild or not cache_is_valid(target, digest):
            _build(path, digest, target)
    return target
