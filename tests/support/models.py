"""Tiny seeded models (``eas.testing.models``) and an hf backend on any model."""

from __future__ import annotations

from eas.config import EngineConfig
from eas.testing.models import make_tiny_llama

__all__ = ["backend", "make_tiny_llama"]


def backend(model, tokenizer, **engine):
    from eas.backends.hf.backend import HFBackend

    return HFBackend(model, tokenizer, EngineConfig(**engine))
