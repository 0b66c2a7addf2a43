"""The one model loader: names -> folders, folders -> (model, tokenizer), options -> a backend.

Every command that loads a model comes through here, so ``"embedded"`` and ``PATH.gguf``
(dequantized once into a checked cache, ``eas.backends.sources.gguf``) mean the same thing
everywhere, and ``--device``/``--dtype``/``--trust-remote-code`` reach every load.
"""

from __future__ import annotations

from typing import Any

from eas.backends.base import Backend
from eas.config import DEFAULT_MODEL, EngineConfig, ServerConfig

_TRUE = ("1", "on", "yes", "true")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; anything else as given."""
    from eas.backends.hf.backend import _require_torch

    torch = _require_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """``"auto"`` -> bfloat16 on CUDA, float32 elsewhere; a name -> its torch dtype."""
    from eas.backends.hf.backend import _require_torch

    torch = _require_torch()
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}: use float32, bfloat16, float16 or auto") from None


def model_path(name: str) -> str:
    """The folder or hub id transformers loads for ``name``.

    A GGUF file (``*.gguf``) -> its dequantized cache folder (``eas.backends.sources.gguf``), built
    on first use; ``"embedded"`` is the GGUF file of the embedded model, so the same.
    """
    if name == "embedded":
        from eas.backends.sources.embedded import gguf_path

        name = str(gguf_path())
    from eas.backends.sources.gguf import gguf_model_dir, is_gguf_path

    if is_gguf_path(name):
        return str(gguf_model_dir(name))
    return name


def _hub_cache() -> Any:
    from pathlib import Path

    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_model_ids() -> list[str]:
    """The model ids in the local Hugging Face cache (``models--org--name`` folders with a snapshot)."""
    cache = _hub_cache()
    if not cache.is_dir():
        return []
    return sorted(
        d.name.removeprefix("models--").replace("--", "/")
        for d in cache.glob("models--*")
        if any((d / "snapshots").glob("*"))
    )


def _hub_offline() -> bool:
    import os

    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return bool(constants.HF_HUB_OFFLINE) or any(f.strip().lower() in _TRUE for f in flags)


def _hub_id(name: str) -> bool:
    """True for a name the hub could hold: ``org/name`` (one slash, the hub's characters)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.count("/") != 1:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def check_model_name(name: str) -> None:
    """Fail at once, without the network, when ``name`` cannot name a model to load.

    A name is good when it is ``"embedded"``, an existing file or folder, a model id in
    the local Hugging Face cache, or an ``org/name`` id the hub may still provide (not
    with ``HF_HUB_OFFLINE=1``). Anything else (a typo such as ``embeded``, a missing GGUF
    file, a bare name nobody has) raises ``ValueError`` with the closest known name, so
    no time is spent retrying a hub and nothing is created.
    """
    import difflib
    from pathlib import Path

    from eas.backends.sources.gguf import is_gguf_path

    path = Path(name).expanduser()
    if name == "embedded" or path.exists():
        return
    cached = cached_model_ids()
    if name in cached or (not is_gguf_path(name) and _hub_id(name) and not _hub_offline()):
        return
    # What a model could be beside it: folders and GGUF files (a GGUF name: GGUF files only).
    parent = path.parent if path.parent.is_dir() else Path(".")
    nearby = [
        str(parent / p.name) if parent != Path(".") else p.name
        for p in parent.iterdir()
        if is_gguf_path(p.name) or (p.is_dir() and not is_gguf_path(name))
    ]
    known = nearby if is_gguf_path(name) else ["embedded", *cached, *nearby]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if is_gguf_path(name):
        raise ValueError(f"cannot load model {name!r}: no GGUF file at {name}{hint}")
    where = "no such file or folder, not 'embedded'"
    cache = f"not in the local Hugging Face cache ({_hub_cache()})"
    hub = " and the hub is off (HF_HUB_OFFLINE)" if _hub_id(name) else "; a hub id is org/name"
    raise ValueError(f"cannot load model {name!r}: {where}, {cache}{hub}{hint}")


def default_tokenizer(model: str) -> str:
    """Tokenizer to use for a served model: the embedded one when the server names the
    embedded GGUF file (llama.cpp reports the file it serves), else ``model`` itself (a
    local GGUF file gives its own cached tokenizer)."""
    from pathlib import Path

    from eas.backends.sources.embedded import GGUF_FILE

    if model == "embedded" or (Path(model).name == GGUF_FILE and not Path(model).is_file()):
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
    """(model, tokenizer) for ``name``: ``"embedded"``, a GGUF file, a folder, a hub id or a
    PEFT checkpoint.

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
    model: str = DEFAULT_MODEL,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    engine: EngineConfig | None = None,
    backend: str = "hf",
    server: ServerConfig | None = None,
    tokenizer: str | None = None,
) -> Backend:
    """A backend for ``model`` (``"embedded"``, a GGUF file, a folder or an id).

    ``backend="hf"``: in-process transformers (exact entropies). ``backend="openai"``:
    the model served at ``server.base_url`` (top-K entropies with a bound); ``tokenizer``
    names the model's HF tokenizer (default: the embedded one for the embedded GGUF,
    else ``model``).
    """
    if backend == "openai":
        from eas.backends.openai.backend import OpenAIBackend

        return OpenAIBackend.connect(model, load_tokenizer(tokenizer or default_tokenizer(model)), server)
    if backend != "hf":
        raise ValueError(f"unknown backend {backend!r}: use 'hf' or 'openai'")
    from eas.backends.hf.backend import HFBackend

    loaded, tok = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    return HFBackend(loaded, tok, engine, name=model)
