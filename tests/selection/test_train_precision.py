"""Mixed precision for training: float32 master weights under bfloat16 autocast by default.

At lr 1e-5 an AdamW step moves a weight by about 1e-5, far below bfloat16's spacing
near the tiny model's weights (0.4 % of the value: 2^-8 relative), so pure bfloat16
weights keep most of their values while float32 master weights take every update.
"""

from __future__ import annotations

import pytest

from eas.records import Record
from eas.selection.training import Precision, TrainConfig, precision, train

pytest.importorskip("trl")

RECORDS = [
    Record(f"r{i}", f"What is {i}+3?", f"{i} + 3 = {i + 3}, so the answer is \\boxed{{{i + 3}}}.") for i in range(10)
]
CONFIG = TrainConfig(
    lr=1e-5, batch_size=2, max_steps=5, save_steps=5, warmup_ratio=0.0, val_fraction=0.2, activation_checkpointing=False
)


def _layer_weights(path):
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(path / "model.safetensors").items() if ".layers." in k}


def _changed_fraction(before, after) -> float:
    changed = total = 0
    for name, b in before.items():
        a = after[name]
        b = b.to(a.dtype)  # the weights the run started from, in the dtype it trained
        changed += int((a != b).sum())
        total += b.numel()
    return changed / total


def _autocast_probe(seen):
    from transformers import TrainerCallback

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            layer = model.model.layers[0].mlp.down_proj
            layer.register_forward_hook(lambda m, i, out: seen.append((m.weight.dtype, out.dtype)))

    return Probe()


def test_bf16_compute_keeps_float32_master_weights_that_take_small_updates(tmp_path, tiny_dir):
    import torch

    before = _layer_weights(tiny_dir)
    seen: list = []
    master = tmp_path / "master"
    train(
        RECORDS,
        master,
        str(tiny_dir),
        None,
        CONFIG,
        device="cpu",
        dtype="bfloat16",
        progress=False,
        callbacks=[_autocast_probe(seen)],
    )
    after = _layer_weights(master / "checkpoint-5")
    assert {a.dtype for a in after.values()} == {torch.float32}
    assert seen and set(seen) == {(torch.float32, torch.bfloat16)}  # float32 weights, bfloat16 compute
    master_changed = _changed_fraction(before, after)

    pure = tmp_path / "pure"
    train(
        RECORDS,
        pure,
        str(tiny_dir),
        None,
        TrainConfig(**{**CONFIG.__dict__, "pure_bf16": True}),
        device="cpu",
        dtype="bfloat16",
        progress=False,
    )
    pure_after = _layer_weights(pure / "checkpoint-5")
    assert {a.dtype for a in pure_after.values()} == {torch.bfloat16}
    pure_changed = _changed_fraction(before, pure_after)
    # Measured on this model: 99.96 % of the layer weights change with master weights, 0.58 % in pure bf16.
    assert master_changed > 0.9
    assert pure_changed < 0.5


def test_precision_flags():
    import torch

    assert precision(torch.bfloat16) == Precision("float32", bf16=True, fp16=False)
    assert precision(torch.float16) == Precision("float32", bf16=False, fp16=True)
    assert precision(torch.float32) == Precision("float32", bf16=False, fp16=False)  # no autocast
    assert precision(torch.bfloat16, pure_bf16=True).weights == "bfloat16"
    with pytest.raises(ValueError, match="pure bfloat16"):
        precision(torch.float32, pure_bf16=True)
