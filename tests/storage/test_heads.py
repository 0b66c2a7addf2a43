"""Head files: a round trip keeps every number; a head for another model or metric is refused."""

import json

import numpy as np
import pytest

from eas.maths.ridge import RidgeHead
from eas.records import InputError
from eas.storage.heads import check_head, load_head, manifest_beside, save_head

METRIC = {"trigger": "\\boxed{", "answer_prefix_tokens": 0, "end": "answer", "use_chat_template": True}


def _head():
    rng = np.random.default_rng(0)
    return RidgeHead(rng.normal(size=5), rng.uniform(0.5, 2, size=5), rng.normal(size=5), 1.25, 3.5)


def test_round_trip_and_manifest(tmp_path):
    path = tmp_path / "head.safetensors"
    head = _head()
    sha = save_head(path, head, {"model": "m", "model_fingerprint": "abc", "layers": [1, 2], "metric": METRIC})
    loaded = load_head(path)
    assert loaded.sha256 == sha
    for name in ("mean", "scale", "weights"):
        np.testing.assert_array_equal(getattr(loaded.head, name), getattr(head, name))
    assert (loaded.head.intercept, loaded.head.alpha) == (1.25, 3.5)
    assert loaded.layers == (1, 2)
    assert json.loads(manifest_beside(path).read_text())["model_fingerprint"] == "abc"
    x = np.random.default_rng(1).normal(size=(3, 5))
    np.testing.assert_array_equal(loaded.head.predict(x), head.predict(x))


def test_check_refuses_another_model_or_metric(tmp_path):
    path = tmp_path / "head.safetensors"
    save_head(path, _head(), {"model": "m", "model_fingerprint": "abc", "layers": [1], "metric": METRIC})
    head = load_head(path)
    check_head(head, "abc", METRIC)
    with pytest.raises(InputError, match="calibrated for model 'm'"):
        check_head(head, "other", METRIC)
    with pytest.raises(InputError, match="trigger"):
        check_head(head, "abc", {**METRIC, "trigger": "The answer is "})


def test_not_a_head(tmp_path):
    with pytest.raises(InputError, match="no such head"):
        load_head(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not an amortised-EAS head"):
        load_head(bad)
