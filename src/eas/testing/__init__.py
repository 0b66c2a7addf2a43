"""Test and benchmark tooling: tiny seeded models, and building and starting llama.cpp's llama-server."""
