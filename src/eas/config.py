"""Settings, one frozen dataclass per concern; every default lives here, once.

Each field is a ``setting(default, help, ...)``: its description is the ``help`` of its
metadata, which is also the help of the command-line option ``eas.cli.options`` builds
from it (``flag`` names the option when ``--field-name`` does not fit), so neither the
default nor its description is written a second time.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal, get_args

from eas.maths.metrics import HES_FRACTION
from eas.maths.ridge import FOLDS

Method = Literal["packed", "naive"]
End = Literal["answer", "response"]
Attention = Literal["auto", "flex", "sdpa"]
HeadProducts = Literal["auto", "float32", "bf16"]
Layout = Literal["auto", "single", "side", "list"]
DTYPES = ("auto", "float32", "bfloat16", "float16")

# The model every command loads when none is named: SmolLM2-135M-Instruct, shipped in a package.
DEFAULT_MODEL = "embedded"


def setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING, **cli: Any) -> Any:
    """A dataclass field described by its metadata: ``help`` and the CLI's ``flag``,
    ``short``, ``metavar``, ``choices`` and ``flag_help`` (the help of a switch that turns
    the field off); ``eas.cli.options`` reads them."""
    metadata = {"help": help, **cli}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class EASConfig:
    """What is measured (the metric's definition); each field's help says what it does.

    ``probe_stride`` > 1 makes ``eas`` the unbiased estimate of stratified probing with its
    standard error ``eas_se`` (``eas.maths.stratified``; docs/method.md, "Stratified probing").
    """

    trigger: str = setting("\\boxed{", "answer-forcing suffix appended to every probe context")
    answer_prefix_tokens: int = setting(
        0,
        "L-1: also append the first L-1 tokens of the ground-truth answer after the trigger "
        "(needs the answer field; 0: none, no ground truth needed)",
        metavar="L-1",
    )
    end: End = setting(
        "answer",
        "answer: x_T is the token holding the last character of the last \\boxed{...} content (the paper); "
        "response: x_T is the response's last token, for traces without a boxed answer (not the paper's metric)",
    )
    use_chat_template: bool = setting(
        True,
        "render the prompt with the model's chat template",
        flag="--no-chat-template",
        flag_help="use the raw prompt text instead of the model's chat template",
    )
    hes_fraction: float = setting(HES_FRACTION, "share of the highest-entropy response tokens summed by HES")
    trajectory: bool = setting(
        False,
        "also write the per-position entropies H_1..H_{T-1} (with --probe-stride: the probed ones, "
        "and their positions in trajectory_t)",
    )
    track_tokens: tuple[str, ...] = setting(
        (),
        "strings (e.g. option letters A,B,C,D), each one token when tokenized alone, whose next-token "
        "probability every probe also returns (column option_probs: string -> list over probes)",
    )
    probe_stride: int = setting(
        1,
        "K: probe one seeded random position per block of K (and always the last): about K times fewer "
        "probes; eas is then an unbiased estimate with its standard error eas_se (1: every position, exact)",
        metavar="K",
    )
    probe_seed: int = setting(
        0, "seed of the positions --probe-stride draws, with the record id (a rerun probes the same ones)"
    )

    def __post_init__(self) -> None:
        if isinstance(self.probe_stride, bool) or not isinstance(self.probe_stride, int) or self.probe_stride < 1:
            raise ValueError(f"probe_stride must be an integer >= 1, not {self.probe_stride!r}")
        if isinstance(self.track_tokens, str) or len(set(self.track_tokens)) != len(self.track_tokens):
            raise ValueError("track_tokens must be a tuple of distinct strings")
        if not self.trigger:
            raise ValueError("trigger must not be empty")
        if self.answer_prefix_tokens < 0:
            raise ValueError("answer_prefix_tokens must be >= 0")
        if self.end not in ("answer", "response"):
            raise ValueError(f"end must be 'answer' or 'response', not {self.end!r}")
        if not 0 < self.hes_fraction <= 1:
            raise ValueError("hes_fraction must be in (0, 1]")


# Device defaults of the packed method: a CPU is bound by arithmetic (small chunks cost nothing); a GPU
# pays a launch time per forward pass, so it packs records to fill chunks sized from free memory.
CPU_CHUNK_PROBES = 256
CPU_PREFILL_TOKENS = 2048
CPU_BATCH_TOKENS = 2048
GPU_BATCH_TOKENS = 65536
GPU_MEMORY_FRACTION = 0.8
GPU_MAX_PROBE_TOKENS = 32768
GPU_PREFILL_TOKENS = 8192


@dataclass(frozen=True)
class EngineConfig:
    """How it is computed (never changes the numbers beyond float rounding); device defaults above."""

    method: Method = setting(
        "packed",
        "packed: KV cache + staircase-masked probe chunks; naive: one forward pass per probe (the reference)",
    )
    chunk_size: int | None = setting(
        None,
        f"probes per forward pass of the packed method; bounds memory (default: {CPU_CHUNK_PROBES} on a CPU; "
        f"on a GPU what its free memory holds, up to {GPU_MAX_PROBE_TOKENS} query tokens)",
    )
    batch_tokens: int | None = setting(
        None,
        "records shorter than this are packed together into one sequence (block-diagonal attention) "
        f"up to this many tokens of work; 0 scores each alone (default: {CPU_BATCH_TOKENS} on a CPU, "
        f"{GPU_BATCH_TOKENS} on a GPU, where the probes of several records fill whole chunks)",
    )
    prefill_chunk: int | None = setting(
        None,
        "the prefill runs in segments of this many tokens, which bounds the activations and the attention "
        f"workspace (default: {CPU_PREFILL_TOKENS} on a CPU, {GPU_PREFILL_TOKENS} on a GPU)",
    )
    attention: Attention = setting(
        "auto",
        "attention kernel of the packed method: flex = block masks (FlexAttention), sdpa = dense masks; "
        "auto = flex on CUDA where torch and the model support it, sdpa elsewhere (recorded in the run's settings)",
    )
    head: HeadProducts = setting(
        "auto",
        "the LM head's products: float32 = upcast; bf16 = bfloat16 products summed in float32 (tensor cores, "
        "within 0.005 bits a probe of float32); auto = bf16 for a bfloat16 model on CUDA, float32 elsewhere",
    )

    def probes_per_chunk(self, on_gpu: bool, suffix_tokens: int) -> int:
        """``chunk_size``, or the device default (on a GPU the cap under ``eas.backends.hf.chunks``' sizing)."""
        if self.chunk_size is not None:
            return self.chunk_size
        return max(1, GPU_MAX_PROBE_TOKENS // max(1, suffix_tokens)) if on_gpu else CPU_CHUNK_PROBES

    def batch_tokens_for(self, on_gpu: bool) -> int:
        """Tokens of work per batch: ``batch_tokens``, or its default for the device."""
        if self.batch_tokens is not None:
            return self.batch_tokens
        return GPU_BATCH_TOKENS if on_gpu else CPU_BATCH_TOKENS

    def prefill_tokens(self, on_gpu: bool) -> int:
        """Tokens per prefill segment: ``prefill_chunk``, or its default for the device."""
        if self.prefill_chunk is not None:
            return self.prefill_chunk
        return GPU_PREFILL_TOKENS if on_gpu else CPU_PREFILL_TOKENS

    def __post_init__(self) -> None:
        if self.method not in ("packed", "naive"):
            raise ValueError(f"method must be 'packed' or 'naive', not {self.method!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if self.batch_tokens is not None and self.batch_tokens < 0:
            raise ValueError("batch_tokens must be >= 0")
        if self.prefill_chunk is not None and self.prefill_chunk < 1:
            raise ValueError("prefill_chunk must be >= 1")
        if self.attention not in get_args(Attention):
            raise ValueError(f"attention must be 'auto', 'flex' or 'sdpa', not {self.attention!r}")
        if self.head not in get_args(HeadProducts):
            raise ValueError(f"head must be 'auto', 'float32' or 'bf16', not {self.head!r}")


@dataclass(frozen=True)
class ServerConfig:
    """How to reach an OpenAI-compatible completions server (the ``openai`` backend)."""

    base_url: str = setting("http://127.0.0.1:8000/v1", "openai: the API root")
    top_k: int = setting(20, "openai: log-probabilities requested per probe (the server's limit applies)")
    concurrency: int = setting(8, "openai: requests in flight at once")
    timeout_s: float = setting(120.0, "openai: seconds per request", flag="--timeout")
    max_retries: int = setting(
        5,
        "openai: retries of a request after a 429, a 5xx, a timeout or a connection error, with exponential "
        "backoff; then the record fails",
    )
    backoff_s: float = setting(0.5, "openai: first backoff in seconds, doubled after each retry (capped at 30 s)")
    api_key_env: str = setting(
        "EAS_API_KEY", "openai: environment variable holding the API key (never printed or written)"
    )

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, not {self.base_url!r}")
        if self.top_k < 1:
            raise ValueError("top_k must be >= 1")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")


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


MIN_CALIBRATION = 8  # AmortisedConfig.min_calibration, named in calibrate_fraction's help


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
class AmortisedConfig:
    """Defaults of amortised EAS (docs/amortised.md): how a head is calibrated."""

    calibrate_fraction: float = setting(
        0.05, f"auto: share of the pool scored exactly to fit the head (at least {MIN_CALIBRATION} records)"
    )
    min_calibration: int = setting(
        MIN_CALIBRATION,
        "auto calibrates on at least this many records (fewer leave too little for a cross-validated penalty)",
    )
    folds: int = setting(FOLDS, "cross-validation folds, grouped by trace")
    seed: int = setting(0, "seed of the calibration slice and of the fold assignment", flag="--calibrate-seed")
    min_spearman: float = setting(
        0.5,
        "a head whose cross-validated Spearman(mean EAS) is below this does not rank the traces it was fitted on: "
        "using it is a warning on stderr and in the run's manifest (heads that work read 0.8 and more)",
    )


@dataclass(frozen=True)
class ModelOptions:
    """How a command loads its models; every load of every command honours them.

    For training ``dtype`` is the compute dtype (autocast); the weights stay float32
    unless ``TrainConfig.pure_bf16``.
    """

    device: str = setting("auto", "auto (cuda if a GPU is visible, else cpu), cpu, cuda, cuda:1, ...")
    dtype: str = setting(
        "auto",
        "weights and activations: auto is bfloat16 on a GPU, float32 elsewhere; entropies are always float32",
        choices=DTYPES,
    )
    trust_remote_code: bool = setting(False, "run the model repository's own code (off by default)")

    def kwargs(self) -> dict[str, object]:
        return {"device": self.device, "dtype": self.dtype, "trust_remote_code": self.trust_remote_code}


@dataclass(frozen=True)
class ViewConfig:
    """The token-level page of scored traces (``eas view``, ``eas.view.render``)."""

    layout: Layout = setting(
        "auto",
        "single, side (side by side) or list (sorted by EAS, each trace drawn when opened); auto: single "
        "for one trace, side by side for up to max_side_by_side, a list for more",
    )
    vmax: float | None = setting(
        None,
        "top of the colour scale in bits (default: the color_percentile percentile of the page's finite H_t; "
        "higher values get the top colour)",
        metavar="BITS",
    )
    color_percentile: float = setting(99.0, "the percentile of H_t that tops the colour scale when vmax is not given")
    max_side_by_side: int = setting(3, "the most traces layout auto puts side by side")

    def __post_init__(self) -> None:
        if self.layout not in get_args(Layout):
            raise ValueError(f"layout must be one of {', '.join(get_args(Layout))}, not {self.layout!r}")
        if self.vmax is not None and not (math.isfinite(self.vmax) and self.vmax > 0):
            raise ValueError(f"vmax must be a finite number of bits > 0, not {self.vmax!r}")
        if not 0 < self.color_percentile <= 100:
            raise ValueError("color_percentile must be in (0, 100]")
        if self.max_side_by_side < 1:
            raise ValueError("max_side_by_side must be >= 1")


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
