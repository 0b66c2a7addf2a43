"""Settings of generation: sampling, monitored sampling (online EAS) and training."""

from __future__ import annotations

from dataclasses import dataclass

from eas.config.fields import setting


@dataclass(frozen=True)
class SamplingConfig:
    """How answers are sampled."""

    n: int = setting(8, "samples per question", flag="--samples", short="-n")
    temperature: float = setting(0.7, "softmax temperature; 0 means greedy (all n samples identical)")
    top_p: float = setting(0.95, "nucleus sampling mass")
    max_new_tokens: int = setting(128, "generation budget per sample, in tokens")
    seed: int = setting(0, "sampler seed: each batch is seeded from it and its index (same seed, same samples)")
    batch_size: int = setting(
        64, "sequences per generation batch: batch_size // n questions (at least one) with all their samples"
    )

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


@dataclass(frozen=True)
class MonitorConfig:
    """Monitored sampling: EAS while the model writes, and early exit on it (docs/online.md).
    The trigger, the probe seed, ``end`` and the tracked tokens come from ``EASConfig``."""

    probe_every: int = setting(
        1,
        "probe one seeded position per block of K tokens (and T-1): eas is then the stratified estimate with its "
        "eas_se, as with --probe-stride K (implies --monitor; 1: every token, exact)",
        metavar="K",
    )
    stop: str | None = setting(
        None,
        "stop rule, NAME[:k=v,...]: plateau (h, w, min_tokens, mean), eat (alpha, delta, m), confidence (p, "
        "min_tokens), budget (n); e.g. eat:delta=1e-4; on a stop the answer is forced (implies --monitor)",
        metavar="RULE",
    )
    answer_tokens: int = setting(32, "after a stop: the budget of the forced answer, decoded greedily")
    end_of_thinking: str | None = setting(
        None,
        "text forced before the trigger on a stop (default: \\n</think>\\n\\n when the chat template uses "
        "</think>, else nothing)",
    )
    trajectory: bool = setting(False, "also keep each sample's curve and token spans (implies --monitor)")

    def __post_init__(self) -> None:
        if isinstance(self.probe_every, bool) or not isinstance(self.probe_every, int) or self.probe_every < 1:
            raise ValueError(f"probe_every must be an integer >= 1, not {self.probe_every!r}")
        if self.answer_tokens < 1:
            raise ValueError("answer_tokens must be >= 1")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one SFT run (``eas train``); identical across strategies in an experiment."""

    epochs: float = setting(2.0, "passes over the training records")
    lr: float = setting(1e-5, "peak learning rate (linear warm-up, then linear decay)")
    batch_size: int = setting(4, "examples per device step")
    grad_accum: int = setting(1, "steps accumulated per optimizer update (effective batch: batch size x this)")
    max_length: int = setting(1024, "tokens per example (longer ones are cut)")
    warmup_ratio: float = setting(0.03, "share of the steps spent warming the learning rate up")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    save_steps: int = setting(50, "checkpoint and validate every N steps")
    max_steps: int = setting(-1, "stop after N steps (-1: the epochs decide)")
    val_fraction: float = setting(0.1, "share of the records held out for the validation loss (at least one)")
    keep_best: int = setting(3, "checkpoints kept by validation loss (plus the newest)")
    lora: bool = setting(False, "train LoRA adapters instead of all weights")
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: int = setting(32, "LoRA scaling alpha")
    activation_checkpointing: bool = setting(
        True,
        "recompute the activations in the backward pass (TRL's default: memory for compute)",
        flag="--no-activation-checkpointing",
        flag_help="keep the activations for the backward pass instead of recomputing them (more memory, less compute)",
    )
    pure_bf16: bool = setting(
        False,
        "train bfloat16 weights without float32 master weights (less memory; at lr 1e-5 most updates round "
        "away, a warning says so); needs --dtype bfloat16 or auto on a GPU",
    )
    seed: int = setting(0, "seed of the training order and of the validation split")

    def __post_init__(self) -> None:
        if self.keep_best < 1:
            raise ValueError("keep_best must be >= 1")
        if not 0 < self.val_fraction < 1:
            raise ValueError("val_fraction must be in (0, 1)")
        if self.save_steps < 1:
            raise ValueError("save_steps must be >= 1")


# How evaluation answers (eas evaluate, the experiment, pass-rate rollouts) are sampled:
# longer answers than the study's.
EVALUATION_SAMPLING = SamplingConfig(max_new_tokens=256)
