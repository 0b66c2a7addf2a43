"""Settings of scoring: the metric (EASConfig), how it is computed (EngineConfig, the device
defaults of chunking), servers, amortised heads and model loading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from eas.config.fields import DTYPES, Attention, End, HeadProducts, Method, setting
from eas.maths.metrics import HES_FRACTION
from eas.maths.ridge import FOLDS


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


MIN_CALIBRATION = 8  # AmortisedConfig.min_calibration, named in calibrate_fraction's help


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
