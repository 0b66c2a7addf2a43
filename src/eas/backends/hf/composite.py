"""Composite (multimodal) checkpoints: read the language model's settings from its own config.

A multimodal Gemma 3 checkpoint (model type ``gemma3``) loads as
``Gemma3ForConditionalGeneration``: the language model's settings (vocabulary, context
length, which layers slide and their window, the attention kernel) live in the config's
``text_config``, and the top level has none of them. Read at the top level, the model
crashed on ``vocab_size`` and, worse, showed no sliding layers, so its windowed layers
would have been scored as full attention. Everything that reads the language model's
settings reads ``text_config(model.config)``.

Text-only input goes through the composite model's own forward (the vision tower stays
idle), so the scores are its language model's; ``tests/backends/test_hf_composite.py``
checks them against the same weights loaded as ``Gemma3ForCausalLM``.
"""

from __future__ import annotations

from typing import Any


def text_config(config: Any) -> Any:
    """The language model's config: ``get_text_config(decoder=True)`` of a composite config, else ``config``."""
    get = getattr(config, "get_text_config", None)
    return get(decoder=True) if callable(get) else config
