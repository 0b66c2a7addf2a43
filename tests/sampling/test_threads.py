"""passive_openmp: idle OpenMP threads sleep, unless torch is already loaded or the user chose."""

from __future__ import annotations

import os
import sys

from eas.sampling.threads import passive_openmp


def test_set_only_before_torch_and_never_over_the_user(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", object())
    passive_openmp()
    assert "OMP_WAIT_POLICY" not in os.environ  # too late: torch has read it
    monkeypatch.delitem(sys.modules, "torch")
    passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
