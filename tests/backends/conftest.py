"""Fixtures shared by the backends' tests: the llama.cpp server they score against."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def llama_url():
    """A llama-cpp-python server on loopback running the embedded GGUF, started once for
    the session (test_server.py and test_server_faults.py): none of their tests needs a
    fresh server, each compares runs made on the same one."""
    pytest.importorskip("llama_cpp.server")
    from eas.testing.llama_server import local_llama_server

    with local_llama_server(n_ctx=2048) as url:
        yield url
