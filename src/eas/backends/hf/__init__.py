"""The in-process transformers runtime: backend, staircase masks, float32 head, KV cache, generation, features."""
