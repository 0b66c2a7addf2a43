"""A KV cache written into buffers allocated once (packed scoring).

transformers' ``DynamicLayer`` grows each layer's keys and values with ``torch.cat``:
every prefill segment and every probe chunk copies the whole cache into a new
allocation, layer by layer, and frees the old one. The packed method knows in advance
how many positions its cache will ever hold (the packed sequence plus one probe
chunk), so ``BufferLayer`` allocates that once per layer and writes into it; ``crop``
only moves the end. (That alone does not keep glibc's heap from holding freed memory on
a CPU: the activations still change size from prefill to probes; see
``eas.backends.hf.heap``.)

``buffered_cache`` falls back to a plain ``DynamicCache`` on a transformers without
replicable cache layers (before the layered caches of 4.5x).
"""

from __future__ import annotations

import functools
from typing import Any


def buffered_cache(capacity: int) -> Any:
    """An empty cache whose layers hold up to ``capacity`` positions without reallocating."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    layer = _buffer_layer_class()
    if layer is None or getattr(cache, "layer_class_to_replicate", None) is None:
        return cache
    cache.layer_class_to_replicate = functools.partial(layer, capacity=capacity)
    return cache


@functools.cache
def _buffer_layer_class() -> Any:
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # pragma: no cover - older transformers
        return None

    class BufferLayer(DynamicLayer):
        """``DynamicLayer`` whose keys and values are views of buffers of ``capacity`` positions."""

        def __init__(self, capacity: int, **kwargs: Any):
            super().__init__(**kwargs)
            self.capacity = capacity
            self.length = 0

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            import torch

            super().lazy_initialization(key_states, value_states)
            shape = lambda x: (*x.shape[:-2], self.capacity, x.shape[-1])  # noqa: E731
            self._keys = torch.empty(shape(key_states), dtype=key_states.dtype, device=key_states.device)
            self._values = torch.empty(shape(value_states), dtype=value_states.dtype, device=value_states.device)
            self.length = 0

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self.capacity:
                raise RuntimeError(f"KV cache buffer of {self.capacity} positions asked for {end}")
            self._keys[..., self.length : end, :] = key_states
            self._values[..., self.length : end, :] = value_states
            self._set_length(end)
            return self.keys, self.values

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove > 0:
                raise ValueError(
                    f"crop takes the number of positions to drop as a negative number, not {tokens_to_remove}"
                )
            if tokens_to_remove and self.is_initialized:
                self._set_length(max(0, self.length + tokens_to_remove))

        def get_seq_length(self) -> int:
            return self.length if self.is_initialized else 0

        def reset(self) -> None:
            self.length = 0
            super().reset()

        def _set_length(self, length: int) -> None:
            self.length = length
            self.keys = self._keys[..., :length, :]
            self.values = self._values[..., :length, :]

    return BufferLayer
