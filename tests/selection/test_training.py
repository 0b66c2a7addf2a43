"""SFT on a tiny in-process model: the loss goes down, and a stopped run resumes."""

from __future__ import annotations

import json

import pytest
from support import make_tiny_llama, read_jsonl

from eas.records import Record
from eas.selection.training import TrainConfig, checkpoints_to_keep, split_validation, train

pytest.importorskip("trl")

RECORDS = [Record(f"r{i}", "What is 2+3?", "2 + 3 = 5, so the answer is \\boxed{5}.") for i in range(12)]


def _log(out):
    return read_jsonl(out / "train_log.jsonl")


def test_loss_goes_down_on_a_repeated_example(tmp_path, tokenizer):
    model = make_tiny_llama(len(tokenizer), seed=5)
    config = TrainConfig(lr=3e-3, batch_size=4, max_steps=12, save_steps=6, warmup_ratio=0.0, val_fraction=0.2)
    result = train(RECORDS, tmp_path, model, tokenizer, config, device="cpu", progress=False)
    losses = [row["loss"] for row in _log(tmp_path) if "loss" in row]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3
    evals = [row["eval_loss"] for row in _log(tmp_path) if "eval_loss" in row]
    assert len(evals) == 2 and evals[1] < evals[0]
    assert result.global_step == 12
    assert [c for c, _ in result.best_checkpoints] == ["checkpoint-12", "checkpoint-6"]


def test_resume_continues_from_the_last_checkpoint(tmp_path, tokenizer):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                control.should_training_stop = True  # an interruption right after a save

    config = TrainConfig(lr=1e-3, batch_size=4, max_steps=6, save_steps=2, warmup_ratio=0.0, val_fraction=0.2)
    import eas.selection.training as training

    original = training._callbacks
    training._callbacks = lambda out, keep: [*original(out, keep), StopAt()]
    try:
        first = train(
            RECORDS, tmp_path, make_tiny_llama(len(tokenizer), seed=6), tokenizer, config, device="cpu", progress=False
        )
    finally:
        training._callbacks = original
    assert first.global_step == 4
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    steps_before = [row["step"] for row in _log(tmp_path) if "loss" in row]
    second = train(
        RECORDS,
        tmp_path,
        make_tiny_llama(len(tokenizer), seed=6),
        tokenizer,
        config,
        resume=True,
        device="cpu",
        progress=False,
    )
    assert second.global_step == 6
    steps_after = [row["step"] for row in _log(tmp_path) if "loss" in row][len(steps_before) :]
    assert steps_after == [5, 6]


def test_pure_helpers():
    assert checkpoints_to_keep([2, 4, 6], {2: 0.3, 4: 0.1, 6: 0.2}, keep_best=1) == [4, 6]
    train_recs, val = split_validation(RECORDS, 0.25, seed=0)
    assert len(val) == 3 and len(train_recs) == 9 and not set(r.id for r in val) & set(r.id for r in train_recs)
    assert split_validation(RECORDS, 0.25, seed=0)[1] == val
    with pytest.raises(ValueError, match="at least 2"):
        split_validation(RECORDS[:1], 0.5, 0)


def test_cli_train_quiet_prints_nothing_and_names_the_rows_it_leaves_out(tmp_path, tiny_dir, capsys):
    from support import write_jsonl

    from eas.cli import main

    src = write_jsonl(
        tmp_path / "picked.jsonl", [{"id": r.id, "prompt": r.prompt, "response": r.response} for r in RECORDS[:4]]
    )
    with src.open("a") as f:
        f.write('{"id": "no-response", "prompt": "q"}\n')
    out = tmp_path / "run"
    args = [
        "-q",
        "train",
        str(src),
        "--model",
        str(tiny_dir),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--save-steps",
        "2",
    ]
    assert main([*args, "--batch-size", "2", "--device", "cpu", "--no-activation-checkpointing"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # no loss dicts printed
    assert "it/s" not in captured.err and "examples/s" not in captured.err  # no progress bars
    assert "1 of 5 rows" in captured.err and "no-response" in captured.err and "'response' is missing" in captured.err
    assert [row["step"] for row in _log(out) if "loss" in row] == [1, 2]
    assert json.loads((out / "best_checkpoints.json").read_text())[0]["checkpoint"] == "checkpoint-2"
    assert json.loads((out / "train_config.json").read_text())["activation_checkpointing"] is False


FAST = TrainConfig(lr=1e-3, batch_size=4, max_steps=2, save_steps=2, warmup_ratio=0.0, val_fraction=0.2)


def _train(out, tokenizer, config=FAST, seed=6, **kwargs):
    model = make_tiny_llama(len(tokenizer), seed=seed)
    return train(RECORDS, out, model, tokenizer, config, device="cpu", progress=False, **kwargs)


def test_a_resume_after_a_kill_logs_every_step_once(tmp_path, tokenizer):
    from transformers import TrainerCallback

    class KillAfterLogging(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.global_step == 5 and "loss" in (logs or {}):
                raise KeyboardInterrupt  # killed after step 5 was logged; the last checkpoint is step 4

    config = TrainConfig(lr=1e-3, batch_size=4, max_steps=6, save_steps=2, warmup_ratio=0.0, val_fraction=0.2)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, tokenizer, config, callbacks=[KillAfterLogging()])
    assert [row["step"] for row in _log(tmp_path) if "loss" in row] == [1, 2, 3, 4, 5]
    assert max(int(p.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*")) == 4
    _train(tmp_path, tokenizer, config, resume=True)
    assert [row["step"] for row in _log(tmp_path) if "loss" in row] == [1, 2, 3, 4, 5, 6]
    assert [row["step"] for row in _log(tmp_path) if "eval_loss" in row] == [2, 4, 6]


def test_a_new_run_never_takes_over_a_folder_holding_a_run(tmp_path, tokenizer):
    from eas.records import InputError

    old = tmp_path / "checkpoint-500"
    old.mkdir()
    (old / "trainer_state.json").write_text("{}")
    with pytest.raises(InputError, match=r"holds a training run \(checkpoint-500\); continue it with --resume"):
        _train(tmp_path, tokenizer)
    with pytest.raises(InputError, match="no record of their settings"):
        _train(tmp_path, tokenizer, resume=True)  # whose run it is, nothing says
    result = _train(tmp_path, tokenizer, overwrite=True)
    assert result.global_step == 2 and not old.exists()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]
    with pytest.raises(InputError, match="continue it with --resume"):
        _train(tmp_path, tokenizer)  # the same settings again, without --resume


def test_a_resume_with_other_settings_is_refused(tmp_path, tokenizer):
    from dataclasses import replace

    from eas.records import InputError

    _train(tmp_path, tokenizer)
    with pytest.raises(InputError, match=r"train\.lr: 0\.001 -> 0\.002"):
        _train(tmp_path, tokenizer, replace(FAST, lr=2e-3), resume=True)
    with pytest.raises(InputError, match=r"model\.fingerprint"):
        _train(tmp_path, tokenizer, seed=7, resume=True)  # another model (other weights)
    moved = _train(tmp_path, tokenizer, replace(FAST, lr=2e-3), resume=True, overwrite=True)
    assert moved.global_step == 2 and json.loads((tmp_path / "train_config.json").read_text())["lr"] == 2e-3
