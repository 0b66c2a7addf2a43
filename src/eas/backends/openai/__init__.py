"""OpenAI-compatible servers (vLLM, SGLang, llama.cpp): backend, HTTP client, capability detection, response shapes."""
