"""Where model weights come from without a hub: GGUF files (dequantized once) and the embedded model."""
