"""Every model load of every command honours --device, --dtype and --trust-remote-code."""

from __future__ import annotations

import json

import pytest
from support import arithmetic_records, write_jsonl

from eas.cli import main
from eas.selection.builtin_pool import make_pool, make_test

OPTIONS = ["--device", "cpu", "--dtype", "bfloat16", "--trust-remote-code"]
SAMPLE = ["--max-new-tokens", "4", "--temperature", "1.0"]
SMALL = ["--strategies", "random", "--budget", "2", "--seeds", "1", "-k", "1", "--epochs", "1", "--batch-size", "1"]


def _commands(tmp, model):
    test = make_test(2, seed=5)
    questions = write_jsonl(tmp / "q.jsonl", test)
    pool = write_jsonl(tmp / "pool.jsonl", make_pool(4, seed=6, test=test))
    records = write_jsonl(tmp / "r.jsonl", arithmetic_records(4))
    m = ["--model", str(model)]
    commands = {
        "score": ["score", str(records), "--out", str(tmp / "s.jsonl"), *m],
        "sample": ["sample", str(questions), "--out", str(tmp / "samples.jsonl"), "-n", "1", *SAMPLE, *m],
        "study": ["study", str(questions), "--out", str(tmp / "study"), "-n", "2", *SAMPLE, *m],
        "select": ["select", str(pool), "--strategy", "eas", "--budget", "2", "--out", str(tmp / "p.jsonl"), *m],
        "train": ["train", str(records), "--out", str(tmp / "run"), "--max-steps", "1", "--batch-size", "2", *m],
        "evaluate": ["evaluate", str(model), "--questions", str(questions), "-k", "1", "--out", str(tmp / "e.json")],
        "experiment": ["experiment", "selection", str(pool), "--test", str(questions), "--out", str(tmp / "x"), *SMALL],
    }
    commands["evaluate"] += SAMPLE
    commands["experiment"] += [*SAMPLE, *m]
    return commands


# what each command loads: the compute dtype for measuring and sampling, float32 master
# weights (under bfloat16 autocast) for training
LOADS = {
    "score": ["bfloat16"],
    "sample": ["bfloat16"],
    "study": ["bfloat16"],
    "select": ["bfloat16"],
    "train": ["float32"],
    "evaluate": ["bfloat16"],
    "experiment": ["bfloat16", "float32", "bfloat16"],  # pool scores, training, evaluation of the best checkpoint
}


@pytest.mark.parametrize("command", list(LOADS))
def test_every_load_gets_the_model_options(tmp_path, tiny_dir, monkeypatch, command):
    import eas.backends.load as load

    calls = []
    real = load.load_model

    def recording(name, **kwargs):
        calls.append({"name": str(name), **kwargs})
        return real(name, **kwargs)

    monkeypatch.setattr(load, "load_model", recording)
    argv = _commands(tmp_path, tiny_dir)[command]
    assert main(["-q", *argv, *OPTIONS]) in (0, 3), command
    assert [c["dtype"] for c in calls] == LOADS[command]
    assert all(c["device"] == "cpu" and c["trust_remote_code"] is True for c in calls), calls
    if command == "experiment":
        settings = json.loads((tmp_path / "x" / "settings.json").read_text())["settings"]
        assert settings["model_options"] == {"device": "cpu", "dtype": "bfloat16", "trust_remote_code": True}
