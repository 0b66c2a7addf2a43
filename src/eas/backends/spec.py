"""Where a run's backend comes from: a ``BackendSpec`` (load options) or an already-loaded backend.

A ``BackendSpec`` is frozen and picklable: the options of ``eas.backends.load.load_backend``
(model, backend kind, device, dtype, trust_remote_code, engine, server, tokenizer). It
can say what it resolves to without loading the model (``resolved``: the dtype, the
device kind and the attention kernel actually used, never ``"auto"``), which is what a
resumable run records and compares (``fingerprint``), and it ``load``s the backend where
it is needed: lazily in this process, or once per Ray actor.

``LoadedBackend`` wraps a backend a caller already holds (tests, notebooks) in the same
interface; it is local only (a live model does not travel to Ray actors), and the caller
keeps ownership: leaving ``open`` does not close it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from eas.backends.base import Backend, capabilities
from eas.config import EngineConfig, ServerConfig
from eas.records import InputError
from eas.storage.parts import fingerprint

# The keys of ``describe()`` that decide the numbers (what a resumed run must match).
IDENTITY_KEYS = ("backend", "model", "device", "dtype", "attention", "tokenizer", "base_url", "top_k")


class BackendSource(Protocol):
    """What a run needs from where its backend comes from."""

    def resolved(self) -> dict[str, Any]:
        """The settings that decide the numbers, as they resolve here (no ``"auto"``)."""
        ...

    def capabilities(self) -> frozenset[str]:
        """Optional backend capabilities (``eas.backends.base.CAPABILITIES``) it will have."""
        ...

    def open(self) -> contextlib.AbstractContextManager[Backend]:
        """A context in which the backend is loaded (and closed afterwards, if it was loaded here)."""
        ...


def device_kind(device: str) -> str:
    """``cuda:1`` -> ``cuda``: the kind of device, which decides the kernels (not which card)."""
    return device.split(":")[0]


@dataclass(frozen=True)
class BackendSpec:
    """How to load a backend; picklable (each Ray actor loads its own from it).

    Attributes are ``eas.backends.load.load_backend``'s arguments.

    Example:
        >>> spec = BackendSpec("embedded", device="cpu")
        >>> spec.resolved()["dtype"]  # doctest: +SKIP
        'float32'
    """

    model: str = "embedded"
    backend: str = "hf"
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    engine: EngineConfig | None = None
    server: ServerConfig | None = None
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("hf", "openai"):
            raise ValueError(f"unknown backend {self.backend!r}: use 'hf' or 'openai'")

    def resolved(self) -> dict[str, Any]:
        """What this spec resolves to on this machine, without loading the model.

        hf: model, device kind, dtype and attention kernel (``auto`` resolved: bfloat16 on
        a GPU, float32 on a CPU; flex attention on CUDA where torch has it, sdpa elsewhere,
        ``eas.backends.hf.flex.resolve_attention``). openai: model, tokenizer, server URL
        and top-K. (A model that cannot take flex runs sdpa under ``auto``: its backend's
        ``describe()`` says so; this resolution does not read the model.)
        """
        from eas.backends.load import default_tokenizer, resolve_device, resolve_dtype

        if self.backend == "openai":
            server = self.server or ServerConfig()
            tokenizer = self.tokenizer or default_tokenizer(self.model)
            return {"backend": "openai", "model": self.model, "tokenizer": tokenizer, "base_url": server.base_url,
                    "top_k": server.top_k}  # fmt: skip
        from eas.backends.hf.flex import resolve_attention

        device = resolve_device(self.device)
        dtype = str(resolve_dtype(self.dtype, device)).removeprefix("torch.")
        engine = self.engine or EngineConfig()
        # the packed method's kernel (the naive one runs the model's own masks, on SDPA)
        attention = resolve_attention(engine.attention if engine.method == "packed" else "sdpa", device_kind(device))
        return {"backend": "hf", "model": self.model, "device": device_kind(device), "dtype": dtype,
                "attention": attention}  # fmt: skip

    def fingerprint(self) -> str:
        """A short hash of ``resolved()``."""
        return fingerprint(self.resolved())

    def capabilities(self) -> frozenset[str]:
        return frozenset({"features", "watched"} if self.backend == "hf" else {"streamed"})

    def load(self) -> Backend:
        """The backend (``InputError`` naming the model when it cannot be loaded or reached)."""
        from eas.backends.load import load_backend

        try:
            return load_backend(
                self.model,
                device=self.device,
                dtype=self.dtype,
                trust_remote_code=self.trust_remote_code,
                engine=self.engine,
                backend=self.backend,
                server=self.server,
                tokenizer=self.tokenizer,
            )
        except (OSError, ValueError) as exc:  # ConnectionError is an OSError
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot load model {self.model!r}: {first}") from None

    @contextlib.contextmanager
    def open(self) -> Iterator[Backend]:
        backend = self.load()
        try:
            yield backend
        finally:
            backend.close()


@dataclass(frozen=True)
class LoadedBackend:
    """A backend the caller already holds, as a ``BackendSource`` (local runs only).

    Its resolved settings are read from its ``describe()``; ``open`` hands it out as it
    is and leaves it open (the caller closes it).
    """

    backend: Any

    def resolved(self) -> dict[str, Any]:
        described = self.backend.describe()
        found = {k: described[k] for k in IDENTITY_KEYS if described.get(k) is not None}
        if "device" in found:
            found["device"] = device_kind(str(found["device"]))
        return found

    def fingerprint(self) -> str:
        return fingerprint(self.resolved())

    def capabilities(self) -> frozenset[str]:
        return capabilities(self.backend)

    @contextlib.contextmanager
    def open(self) -> Iterator[Backend]:
        yield self.backend
