"""The one model loader: names -> folders, folders -> (model, tokenizer), options -> a backend.

Every command that loads a model comes through here, so ``"embedded"`` (and any other
special name) means the same thing everywhere and ``--device``/``--dtype``/
``--trust-remote-code`` reach every load.
"""

from __future__ import annotations

from typing import Any

from eas.backends.base import Backend
from eas.config import EngineConfig, ServerConfig


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; anything else as given."""
    from eas.backends.hf import _require_torch

    torch = _require_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """``"auto"`` -> bfloat16 on CUDA, float32 elsewhere; a name -> its torch dtype."""
    from eas.backends.hf import _require_torch

    torch = _require_torch()
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}: use float32, bfloat16, float16 or auto") from None


def model_path(name: str) -> str:
    """The folder or hub id transformers loads for ``name`` (``"embedded"`` -> its cache)."""
    if name == "embedded":
        from eas.backends.embedded import embedded_model_dir

        return str(embedded_model_dir())
    return name


def default_tokenizer(model: str) -> str:
    """Tokenizer to use for a served model: the embedded one for the embedded GGUF."""
    from eas.backends.embedded import GGUF_FILE

    if model == "embedded" or model.endswith(GGUF_FILE):
        return "embedded"
    return model


def load_tokenizer(name: str, trust_remote_code: bool = False) -> Any:
    """The HF tokenizer of ``name`` (a model name as ``model_path`` takes it)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path(name), trust_remote_code=trust_remote_code)


def load_model(
    name: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    attn_implementation: str | None = "sdpa",
) -> tuple[Any, Any]:
    """(model, tokenizer) for ``name``: ``"embedded"``, a folder, a hub id or a PEFT checkpoint.

    Weights are loaded from safetensors only; ``trust_remote_code`` stays off unless
    asked for. A folder with ``adapter_config.json`` (a LoRA checkpoint) is loaded with
    PEFT and merged.
    """
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_path(name)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if (Path(path) / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(path, dtype=torch_dtype).merge_and_unload()
        return model.to(dev), tokenizer
    kwargs: dict[str, Any] = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch_dtype, trust_remote_code=trust_remote_code, use_safetensors=True, **kwargs
    )
    return model.to(dev), tokenizer


def load_backend(
    model: str = "embedded",
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    engine: EngineConfig | None = None,
    backend: str = "hf",
    server: ServerConfig | None = None,
    tokenizer: str | None = None,
) -> Backend:
    """A backend for ``model`` (``"embedded"``, a path or an id).

    ``backend="hf"``: in-process transformers (exact entropies). ``backend="openai"``:
    the model served at ``server.base_url`` (top-K entropies with a bound); ``tokenizer``
    names the model's HF tokenizer (default: the embedded one for the embedded GGUF,
    else ``model``).
    """
    if backend == "openai":
        from eas.backends.openai import OpenAIBackend

        return OpenAIBackend.connect(model, load_tokenizer(tokenizer or default_tokenizer(model)), server)
    if backend != "hf":
        raise ValueError(f"unknown backend {backend!r}: use 'hf' or 'openai'")
    from eas.backends.hf import HFBackend

    loaded, tok = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    return HFBackend(loaded, tok, engine, name=model)
