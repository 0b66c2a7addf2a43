"""Settings of a scoring run, one frozen dataclass per concern; defaults live here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from eas.maths.metrics import HES_FRACTION
from eas.maths.ridge import FOLDS

Method = Literal["packed", "naive"]
End = Literal["answer", "response"]
Layout = Literal["auto", "single", "side", "list"]


@dataclass(frozen=True)
class EASConfig:
    """What is measured (the metric's definition).

    Attributes:
        trigger: answer-forcing suffix appended to every probe context.
        answer_prefix_tokens: L-1, how many leading tokens of the ground-truth answer
            follow the trigger (0: none, no ground truth needed).
        end: ``"answer"`` (the paper): x_T is the token holding the last character of
            the last ``\\boxed{...}`` content. ``"response"``: x_T is the response's
            last token, for traces without a boxed answer (a deviation from the paper).
        use_chat_template: render the prompt with the tokenizer's chat template.
        hes_fraction: share of highest-entropy response tokens summed by HES.
        trajectory: also return the per-position entropies H_1 .. H_{T-1}.
        track_tokens: strings (e.g. option letters ``("A", "B", "C", "D")``), each one
            token when tokenized alone, whose next-token probability every probe also
            returns (output column ``option_probs``: string -> list over probes).
        probe_stride: k; 1 (the default) probes every position and EAS is exact. k > 1
            probes one seeded random position per block of k (and always t = T-1), and
            ``eas`` is the unbiased estimate with its standard error ``eas_se``
            (``eas.maths.stratified``; docs/method.md, "Stratified probing").
        probe_seed: with the record id, seeds the positions a stride > 1 draws, so a
            rerun or a resumed run probes the same positions.
    """

    trigger: str = "\\boxed{"
    answer_prefix_tokens: int = 0
    end: End = "answer"
    use_chat_template: bool = True
    hes_fraction: float = HES_FRACTION
    trajectory: bool = False
    track_tokens: tuple[str, ...] = ()
    probe_stride: int = 1
    probe_seed: int = 0

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


# Default chunking of the packed method. A CPU is bound by arithmetic, so small chunks
# cost nothing and keep memory low; a GPU pays a fixed launch time per forward pass
# (about 80 ms for a 28-layer model under transformers, measured on an H200), so it
# takes chunks large enough for the arithmetic to dominate.
CPU_CHUNK_PROBES = 256
CPU_PREFILL_TOKENS = 2048
GPU_PROBE_TOKENS = 8192
GPU_PREFILL_TOKENS = 8192


@dataclass(frozen=True)
class EngineConfig:
    """How it is computed (never changes the numbers beyond float rounding).

    Attributes:
        method: ``"packed"`` (KV cache + staircase-masked probe chunks) or ``"naive"``
            (one forward pass per probe; the reference).
        chunk_size: probes per forward pass in the packed method; bounds memory.
            None (the default): 256 probes on a CPU; on a GPU, as many probes as make
            8192 query tokens (``GPU_PROBE_TOKENS``), since there each forward pass
            costs a fixed launch time that small chunks would pay many times over.
        batch_tokens: records shorter than this are packed together into one sequence
            (block-diagonal attention) up to this many tokens; 0 scores each alone.
        prefill_chunk: the prefill runs in segments of this many tokens, which bounds
            the activations and the attention workspace (the LM head is applied in
            float32 to blocks of the needed rows, independently of this). None (the
            default): 2048 on a CPU, 8192 on a GPU.
    """

    method: Method = "packed"
    chunk_size: int | None = None
    batch_tokens: int = 2048
    prefill_chunk: int | None = None

    def probes_per_chunk(self, on_gpu: bool, suffix_tokens: int) -> int:
        """Probes per forward pass: ``chunk_size``, or its default for the device."""
        if self.chunk_size is not None:
            return self.chunk_size
        return max(1, GPU_PROBE_TOKENS // max(1, suffix_tokens)) if on_gpu else CPU_CHUNK_PROBES

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
        if self.batch_tokens < 0:
            raise ValueError("batch_tokens must be >= 0")
        if self.prefill_chunk is not None and self.prefill_chunk < 1:
            raise ValueError("prefill_chunk must be >= 1")


@dataclass(frozen=True)
class ServerConfig:
    """How to reach an OpenAI-compatible completions server (the ``openai`` backend).

    Attributes:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        top_k: log-probabilities requested per probe (the server's limit applies).
        concurrency: requests in flight at once.
        timeout_s: per-request timeout.
        max_retries: retries of a request after a 429, a 5xx, a timeout or a
            connection error, with exponential backoff; then the record fails.
        backoff_s: first backoff; doubled after each retry (capped at 30 s).
        api_key_env: environment variable holding the API key (never printed or written).
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    top_k: int = 20
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 0.5
    api_key_env: str = "EAS_API_KEY"

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
    """How answers are sampled.

    Attributes:
        n: samples per question.
        temperature: softmax temperature; 0 means greedy (all n samples identical).
        top_p: nucleus sampling mass.
        max_new_tokens: generation budget per sample.
        seed: seed of the random stream (each batch is seeded from it and its index).
        batch_size: sequences per batch: ``batch_size // n`` questions (at least one)
            with all their n samples.
    """

    n: int = 8
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 128
    seed: int = 0
    batch_size: int = 64

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

    The trigger, the probe seed, ``end`` and the tracked tokens come from ``EASConfig``.

    Attributes:
        probe_every: k; 1 probes after every generated token (exact online EAS). k > 1
            probes one seeded position per block of k (the same position for every row
            of a sampler batch, so the other steps carry no probe), plus T-1 and the last
            block's position once T is known: the stratified estimate and ``eas_se`` of
            ``--probe-stride k`` (``eas.maths.stratified``).
        stop: a stop rule ``NAME[:k=v,...]`` (``eas.sampling.rules``), or None to only watch.
        answer_tokens: on a stop, the budget of the greedily decoded forced answer.
        end_of_thinking: text forced before the trigger on a stop; None: ``\\n</think>\\n\\n``
            when the chat template uses ``</think>``, else nothing.
        trajectory: keep each sample's curve (``trajectory``, ``token_spans``) in its row.
    """

    probe_every: int = 1
    stop: str | None = None
    answer_tokens: int = 32
    end_of_thinking: str | None = None
    trajectory: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.probe_every, bool) or not isinstance(self.probe_every, int) or self.probe_every < 1:
            raise ValueError(f"probe_every must be an integer >= 1, not {self.probe_every!r}")
        if self.answer_tokens < 1:
            raise ValueError("answer_tokens must be >= 1")


@dataclass(frozen=True)
class AmortisedConfig:
    """Defaults of amortised EAS (docs/amortised.md): how a head is calibrated.

    Attributes:
        calibrate_fraction: ``--amortised auto``: the share of the pool scored exactly.
        min_calibration: ``auto`` calibrates on at least this many records (fewer leave
            too little for a 5-fold cross-validated penalty).
        folds: cross-validation folds, grouped by trace.
        seed: seed of the calibration slice and of the fold assignment.
    """

    calibrate_fraction: float = 0.05
    min_calibration: int = 8
    folds: int = FOLDS
    seed: int = 0


@dataclass(frozen=True)
class ModelOptions:
    """How a command loads its models; every load of every command honours them.

    Attributes:
        device: ``auto`` (cuda if visible, else cpu), ``cpu``, ``cuda``, ``cuda:1``, ...
        dtype: ``auto`` (bfloat16 on CUDA, float32 elsewhere), ``float32``, ``bfloat16``,
            ``float16``. For training it is the compute dtype (autocast); the weights
            stay float32 unless ``TrainConfig.pure_bf16``.
        trust_remote_code: run a model repository's own code (off by default).
    """

    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False

    def kwargs(self) -> dict[str, object]:
        return {"device": self.device, "dtype": self.dtype, "trust_remote_code": self.trust_remote_code}


@dataclass(frozen=True)
class ViewConfig:
    """The token-level page of scored traces (``eas view``, ``eas.view.render``).

    Attributes:
        layout: ``single``, ``side`` (side by side), ``list`` (sorted by EAS, each trace
            drawn when opened) or ``auto``: single for one trace, side by side for up to
            ``max_side_by_side``, a list for more.
        vmax: top of the colour scale in bits; ``None``: the ``color_percentile``
            percentile of the page's finite H_t (higher values get the top colour).
        color_percentile: see ``vmax``.
        max_side_by_side: the most traces ``auto`` puts side by side.
    """

    layout: Layout = "auto"
    vmax: float | None = None
    color_percentile: float = 99.0
    max_side_by_side: int = 3

    def __post_init__(self) -> None:
        if self.layout not in get_args(Layout):
            raise ValueError(f"layout must be one of {', '.join(get_args(Layout))}, not {self.layout!r}")
        if self.vmax is not None and not self.vmax > 0:
            raise ValueError("vmax must be > 0 bits")
        if not 0 < self.color_percentile <= 100:
            raise ValueError("color_percentile must be in (0, 100]")
        if self.max_side_by_side < 1:
            raise ValueError("max_side_by_side must be >= 1")
