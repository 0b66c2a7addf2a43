"""Supervised fine-tuning of a student on (prompt, response) records, with TRL.

The records are rendered exactly as ``eas score`` reads them: the prompt as one user
message in the model's chat template (its ids from ``eas.backends.prompts``, the same
for every command), the response as the assistant's reply; the loss is on the response
tokens only (pre-tokenized ``input_ids`` + ``completion_mask`` rows for TRL). A deterministic slice
of the records (``val_fraction``, at least one) is held out for the validation loss.

Checkpoints are written every ``save_steps`` steps; after each one, only the
``keep_best`` checkpoints with the lowest validation loss are kept, plus the newest
(so a run killed at any point resumes from its last checkpoint with ``resume=True``).
``train_log.jsonl`` gets one line per logged step; ``best_checkpoints.json`` lists the
kept checkpoints, best first. The folder is stamped with the run's settings, so another
run is never resumed or mixed in (``eas.selection.train_folder``).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eas.config import TrainConfig
from eas.records import Record
from eas.selection.train_folder import claim_run_folder, cut_log, train_settings
from eas.storage.jsontext import dumps

log = logging.getLogger(__name__)

TRAIN_HINT = "pip install 'eas[train]'  (trl, peft, datasets)"


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    best_checkpoints: list[tuple[str, float]]
    global_step: int


def _require_trl() -> Any:
    try:
        import trl
    except ImportError as exc:
        raise ImportError(f"training needs TRL: {TRAIN_HINT}") from exc
    return trl


def to_conversations(records: Sequence[Record]) -> list[dict[str, Any]]:
    """TRL's conversational prompt-completion rows (loss on the completion only)."""
    return [
        {
            "prompt": [{"role": "user", "content": r.prompt}],
            "completion": [{"role": "assistant", "content": r.response}],
        }
        for r in records
    ]


def tokenized_examples(records: Sequence[Record], tokenizer: Any) -> list[dict[str, list[int]]]:
    """Pre-tokenized rows for TRL: ``input_ids`` and ``completion_mask`` (1 on the response).

    The prompt ids are ``eas.backends.prompts.prompt_ids``, exactly what ``eas score``,
    ``sample``, ``study`` and ``evaluate`` feed the model. The completion is what the
    chat template writes after the prompt for the assistant's reply (the response and
    the template's end of turn), tokenized without special tokens; a template that does
    not render the prompt as a prefix of the whole conversation (or no template) gets
    the response followed by the EOS token.
    """
    from eas.backends.prompts import has_chat_template, prompt_ids, render_prompt

    rows = []
    for r in records:
        ids = prompt_ids(tokenizer, r.prompt)
        prompt_text = render_prompt(tokenizer, r.prompt)
        completion_text = None
        if has_chat_template(tokenizer):
            turns = to_conversations([r])[0]
            full = tokenizer.apply_chat_template(turns["prompt"] + turns["completion"], tokenize=False)
            if full.startswith(prompt_text):
                completion_text = full[len(prompt_text) :]
        if completion_text is None:
            completion_text = r.response + (tokenizer.eos_token or "")
        completion = list(tokenizer(completion_text, add_special_tokens=False)["input_ids"])
        rows.append({"input_ids": ids + completion, "completion_mask": [0] * len(ids) + [1] * len(completion)})
    return rows


def split_validation(records: Sequence[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """A seeded split: (train, validation), validation at least one record."""
    import numpy as np

    if len(records) < 2:
        raise ValueError("training needs at least 2 records (one is held out for validation)")
    n_val = max(1, round(fraction * len(records)))
    order = np.random.default_rng(seed).permutation(len(records))
    val = {int(i) for i in order[:n_val]}
    return [r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val]


def checkpoint_losses(log_history: Sequence[dict[str, Any]]) -> dict[int, float]:
    """Validation loss at each evaluated step, from a trainer's log history."""
    return {int(h["step"]): float(h["eval_loss"]) for h in log_history if "eval_loss" in h}


def checkpoints_to_keep(steps: Sequence[int], losses: dict[int, float], keep_best: int) -> list[int]:
    """The ``keep_best`` steps with the lowest loss (ties: earlier), plus the newest.

    Example:
        >>> checkpoints_to_keep([2, 4, 6, 8], {2: 1.0, 4: 0.5, 6: 0.7, 8: 0.9}, keep_best=2)
        [4, 6, 8]
    """
    ranked = sorted((s for s in steps if s in losses), key=lambda s: (losses[s], s))[:keep_best]
    keep = set(ranked)
    if steps:
        keep.add(max(steps))
    return sorted(keep)


def _callbacks(out_dir: Path, keep_best: int) -> list[Any]:
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                with (out_dir / "train_log.jsonl").open("a") as f:
                    f.write(dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")

    class KeepBest(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            dirs = {
                int(p.name.split("-")[1]): p for p in out_dir.glob("checkpoint-*") if p.name.split("-")[1].isdigit()
            }
            losses = checkpoint_losses(state.log_history)
            keep = checkpoints_to_keep(sorted(dirs), losses, keep_best)
            for step, path in dirs.items():
                if step not in keep:
                    shutil.rmtree(path, ignore_errors=True)
            best = sorted((s for s in keep if s in losses), key=lambda s: (losses[s], s))[:keep_best]
            listing = [{"checkpoint": f"checkpoint-{s}", "eval_loss": losses[s]} for s in best]
            (out_dir / "best_checkpoints.json").write_text(dumps(listing, indent=1) + "\n")

    return [JsonlLog(), KeepBest()]


def train(
    records: Sequence[Record],
    out_dir: str | Path,
    model: Any = "embedded",
    tokenizer: Any = None,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune ``model`` on ``records``; checkpoints and logs go to ``out_dir``.

    Args:
        records: the selected (prompt, response) records.
        out_dir: checkpoints, ``train_log.jsonl``, ``best_checkpoints.json``.
        model: ``"embedded"``, a model id or folder, or a model object (with ``tokenizer``).
        tokenizer: needed when ``model`` is an object.
        config: hyper-parameters.
        resume: continue from the newest checkpoint in ``out_dir`` (a fresh start if none).
        overwrite: remove a run ``out_dir`` holds (other settings, or no ``resume``), not refuse.
        device: as for scoring (``auto``: cuda when there is a GPU).
        dtype: the **compute** dtype (``auto``: bfloat16 on CUDA, float32 elsewhere). The
            weights and the optimizer state stay float32 (master weights) and the forward
            and backward passes run under autocast in ``dtype``, as the transformers
            Trainer does for a float32 model with ``bf16=True``/``fp16=True``. Only
            ``config.pure_bf16`` trains bfloat16 weights (with a warning: at lr 1e-5 most
            AdamW updates are smaller than bfloat16's spacing and round away).
        trust_remote_code: as for every model load.
        progress: the trainer's progress bar and the loss printed (off: ``train_log.jsonl`` only).
        callbacks: more ``transformers.TrainerCallback`` objects.
    """
    _require_trl()
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer

    from eas.backends.load import load_model, resolve_device, resolve_dtype

    config = config or TrainConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(device)
    compute = precision(resolve_dtype(dtype, device), config.pure_bf16)
    if isinstance(model, str):
        model, tokenizer = load_model(
            model,
            device=device,
            dtype=compute.weights,
            trust_remote_code=trust_remote_code,
            attn_implementation=None,
        )
    elif not config.pure_bf16 and next(model.parameters()).dtype != _torch_dtype(compute.weights):
        model = model.to(_torch_dtype(compute.weights))  # float32 master weights
    if tokenizer is None:
        raise ValueError("pass the tokenizer with a model object")
    claim_run_folder(out_dir, train_settings(records, model, config, device, compute), resume, overwrite)
    train_recs, val_recs = split_validation(records, config.val_fraction, config.seed)
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    args = SFTConfig(
        output_dir=str(out_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        **_renamed("warmup_ratio", "warmup_steps", config.warmup_ratio),
        **_renamed("activation_checkpointing", "gradient_checkpointing", config.activation_checkpointing),
        weight_decay=config.weight_decay,
        max_length=config.max_length,
        completion_only_loss=True,
        eval_strategy="steps",
        eval_steps=config.save_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=None,
        logging_steps=1,
        report_to=[],
        seed=config.seed,
        bf16=compute.bf16,
        fp16=compute.fp16,
        use_cpu=device == "cpu",
        disable_tqdm=not progress,
        save_only_model=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(tokenized_examples(train_recs, tokenizer)),
        eval_dataset=Dataset.from_list(tokenized_examples(val_recs, tokenizer)),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[*_callbacks(out_dir, config.keep_best), *callbacks],
    )
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # prints every log dict when tqdm is off
    last = get_last_checkpoint(str(out_dir)) if resume else None
    if resume and last is None:
        log.info("no checkpoint in %s: starting from the beginning", out_dir)
    if resume:
        cut_log(out_dir, int(Path(last).name.split("-")[1]) if last else 0)
    (out_dir / "train_config.json").write_text(dumps(asdict(config), indent=1) + "\n")
    trainer.train(resume_from_checkpoint=last)
    best_file = out_dir / "best_checkpoints.json"
    best = json.loads(best_file.read_text()) if best_file.exists() else []
    return TrainResult(out_dir, [(b["checkpoint"], b["eval_loss"]) for b in best], trainer.state.global_step)


@dataclass(frozen=True)
class Precision:
    """How a run trains: the dtype of the weights and the Trainer's autocast flags."""

    weights: str  # "float32" (master weights) or "bfloat16" (pure bf16)
    bf16: bool
    fp16: bool


def precision(compute_dtype: Any, pure_bf16: bool = False) -> Precision:
    """Float32 weights with autocast in ``compute_dtype``; bfloat16 weights only if ``pure_bf16``.

    Example:
        >>> import torch
        >>> precision(torch.bfloat16)
        Precision(weights='float32', bf16=True, fp16=False)
    """
    name = str(compute_dtype).removeprefix("torch.")
    if pure_bf16:
        if name != "bfloat16":
            raise ValueError(f"pure bfloat16 weights need the bfloat16 compute dtype, not {name}")
        log.warning(
            "training pure bfloat16 weights (no float32 master copy): updates smaller than about "
            "0.4 % of a weight round away; at lr 1e-5 most AdamW steps change nothing"
        )
        return Precision("bfloat16", bf16=True, fp16=False)
    return Precision("float32", bf16=name == "bfloat16", fp16=name == "float16")


def _torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def _renamed(name: str, old_name: str, value: Any) -> dict[str, Any]:
    """``{name: value}``, or ``{old_name: value}`` for a transformers without ``name``.

    transformers 5 folded ``warmup_ratio`` into ``warmup_steps`` (a float < 1 is a ratio)
    and renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (warning on
    every run where only the old name is set, as TRL's SFTConfig does).
    """
    import inspect

    from transformers import TrainingArguments

    params = inspect.signature(TrainingArguments.__init__).parameters
    return {name if name in params else old_name: value}
