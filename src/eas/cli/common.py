"""What the commands share: option groups (defaults from ``eas.config``), exit codes, errors."""

from __future__ import annotations

import argparse
from typing import Any

from eas.config import EASConfig, SamplingConfig, ServerConfig

EXIT_OK, EXIT_USAGE, EXIT_SKIPPED = 0, 2, 3


DTYPE_HELP = "weights and activations (default: float32 on CPU, bfloat16 on GPU); entropies are always float32"
TRAIN_DTYPE_HELP = (
    "the compute dtype of training (autocast; default: bfloat16 on GPU, float32 on CPU); the weights and "
    "optimizer state stay float32 (master weights) unless --pure-bf16"
)


def add_model_args(p: argparse.ArgumentParser, dtype_help: str = DTYPE_HELP) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default="embedded",
        help="'embedded' (SmolLM2-135M-Instruct, shipped in a package; the default), "
        "a GGUF file (PATH.gguf: dequantized once into a checked cache, then reused), "
        "a local folder or a transformers model id",
    )
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    g.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help=dtype_help,
    )
    g.add_argument(
        "--trust-remote-code", action="store_true", help="run the model repository's own code (off by default)"
    )


def add_backend_args(p: argparse.ArgumentParser, ray: bool = True) -> None:
    """The --backend hf|openai options (and, with ``ray``, the Ray engine's)."""
    g = p.add_argument_group("backend (serving engines)")
    g.add_argument(
        "--backend",
        choices=["hf", "openai"],
        default="hf",
        help="hf: the model in this process, exact entropies (default); openai: an OpenAI-compatible server "
        "(vLLM, SGLang, llama.cpp) with top-K entropies and their bound (columns eas_bound, min_topk_mass)",
    )
    g.add_argument("--base-url", default=ServerConfig.base_url, help="openai: the API root (default: %(default)s)")
    g.add_argument(
        "--top-k", type=int, default=ServerConfig.top_k, help="openai: log-probs per probe (default %(default)s)"
    )
    g.add_argument(
        "--concurrency",
        type=int,
        default=ServerConfig.concurrency,
        help="openai: requests in flight (default %(default)s)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=ServerConfig.timeout_s,
        help="openai: seconds per request (default %(default)s)",
    )
    g.add_argument(
        "--max-retries",
        type=int,
        default=ServerConfig.max_retries,
        help="openai: retries on 429/5xx/timeouts (default %(default)s)",
    )
    g.add_argument(
        "--api-key-env",
        default=ServerConfig.api_key_env,
        help="openai: env variable with the API key (default: %(default)s)",
    )
    g.add_argument(
        "--tokenizer",
        default=None,
        help="openai: the model's HF tokenizer, a local folder, an id or a GGUF file (default: 'embedded' for the embedded GGUF, "
        "else --model)",
    )
    if not ray:
        return
    g = p.add_argument_group("scale-out engine")
    g.add_argument("--engine", choices=["local", "ray"], default="local", help="ray: score on a Ray cluster")
    g.add_argument("--workers", type=int, default=2, help="ray: scoring actors, one model each (default 2)")
    g.add_argument("--ray-address", default=None, help="ray: cluster address, e.g. ray://head:10001 (default: local)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs per actor (default 0)")


def backend_options(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    """Keyword arguments of ``eas.backends.load.load_backend`` from the parsed options."""

    server = None
    if args.backend == "openai":
        try:
            server = ServerConfig(
                base_url=args.base_url,
                top_k=args.top_k,
                concurrency=args.concurrency,
                timeout_s=args.timeout,
                max_retries=args.max_retries,
                api_key_env=args.api_key_env,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return {
        "model": args.model,
        "device": args.device,
        "dtype": args.dtype,
        "trust_remote_code": args.trust_remote_code,
        "engine": engine,
        "backend": args.backend,
        "server": server,
        "tokenizer": args.tokenizer,
    }


def backend_spec(args: argparse.Namespace, engine: Any) -> Any:
    """The ``BackendSpec`` named by the model and backend options."""
    from eas.backends.spec import BackendSpec

    return BackendSpec(**backend_options(args, engine))


def add_metric_args(g: Any) -> None:
    """The options that define the metric (trigger, answer prefix, end, chat template), on group ``g``."""
    g.add_argument(
        "--trigger", default=EASConfig.trigger, help="answer-forcing suffix of every probe (default: %(default)s)"
    )
    g.add_argument(
        "--answer-prefix-tokens",
        type=int,
        default=EASConfig.answer_prefix_tokens,
        metavar="L-1",
        help="also append the first L-1 tokens of the ground-truth answer (needs the answer field; default 0)",
    )
    g.add_argument(
        "--end",
        choices=["answer", "response"],
        default=EASConfig.end,
        help="answer: x_T is the last token of the last \\boxed{...} content (the paper); "
        "response: probe every position of the response (traces without a boxed answer; not the paper's metric)",
    )
    g.add_argument(
        "--no-chat-template", action="store_true", help="use the raw prompt text instead of the chat template"
    )


def add_stride_args(g: Any) -> None:
    """--probe-stride and --probe-seed (stratified probing; ``EASConfig`` holds both)."""
    g.add_argument(
        "--probe-stride",
        type=int,
        default=EASConfig.probe_stride,
        metavar="K",
        help="probe one seeded random position per block of K (and always the last): about K times fewer probes; "
        "eas is then an unbiased estimate with its standard error eas_se (default %(default)s: every position, exact)",
    )
    g.add_argument(
        "--probe-seed",
        type=int,
        default=EASConfig.probe_seed,
        help="seed of the positions --probe-stride draws, with the record id (default %(default)s)",
    )


def model_options(args: argparse.Namespace) -> Any:
    """The ``ModelOptions`` named by the options of ``add_model_args``."""
    from eas.config import ModelOptions

    return ModelOptions(device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)


def fields_from_args(args: argparse.Namespace) -> Any:
    """The ``FieldMap`` named by the options of ``add_field_args``."""
    from eas.storage.inputs import FieldMap

    return FieldMap(
        id=args.id_field or "id", prompt=args.prompt_field, response=args.response_field, answer=args.answer_field
    )


def add_field_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input fields")
    g.add_argument(
        "--id-field", default=None, help="field with the record id (default 'id', else the 0-based row index)"
    )
    g.add_argument("--prompt-field", default="prompt", help="field with the question (default: prompt)")
    g.add_argument("--response-field", default="response", help="field with the reasoning trace (default: response)")
    g.add_argument("--answer-field", default="answer", help="field with the ground-truth answer (default: answer)")


def add_sampling_args(
    g: Any,
    *,
    max_new_tokens: int,
    seed_flag: str = "--sample-seed",
    batch_flag: str = "--sample-batch",
) -> None:
    """The sampler's options, the same for every command that generates.

    Commands that already have a ``--seed`` or ``--batch-size`` of their own (``select``,
    ``train``, ``experiment``) keep the default ``--sample-seed``/``--sample-batch`` names;
    the destinations are the same either way, so ``sampling_from_args`` reads them all.
    """
    g.add_argument(
        "--temperature",
        type=float,
        default=SamplingConfig.temperature,
        help="sampling temperature; 0 = greedy (default %(default)s)",
    )
    g.add_argument(
        "--top-p", type=float, default=SamplingConfig.top_p, help="nucleus sampling mass (default %(default)s)"
    )
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help=f"generation budget per sample (default {max_new_tokens})",
    )
    g.add_argument(
        seed_flag,
        type=int,
        default=SamplingConfig.seed,
        dest="sample_seed",
        help="sampler seed; same seed, same samples (default %(default)s)",
    )
    g.add_argument(
        batch_flag,
        type=int,
        default=SamplingConfig.batch_size,
        dest="sample_batch",
        help="sequences per generation batch; all samples of a question share one (default %(default)s)",
    )


def sampling_from_args(args: argparse.Namespace, n: int = 1) -> Any:
    """The ``SamplingConfig`` named by the options of ``add_sampling_args``."""

    try:
        return SamplingConfig(
            n=n,
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            seed=args.sample_seed,
            batch_size=args.sample_batch,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


class UsageError(Exception):
    """Bad arguments found after parsing; exit status 2."""


def model_load_error(name: str, exc: BaseException) -> UsageError:
    """The one-line usage error for a model that cannot be loaded."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UsageError(f"cannot load model {name!r}: {first}")


# The metric options a command may have, as EASConfig fields (`--no-chat-template` apart).
_METRIC_OPTIONS = ("trigger", "answer_prefix_tokens", "end", "trajectory", "probe_stride", "probe_seed")


def eas_config_from_args(args: argparse.Namespace) -> Any:
    """The ``EASConfig`` of the metric options this command has; the others keep their defaults."""
    from eas.config import EASConfig

    values = {name: getattr(args, name) for name in _METRIC_OPTIONS if hasattr(args, name)}
    if hasattr(args, "no_chat_template"):
        values["use_chat_template"] = not args.no_chat_template
    try:
        return EASConfig(**values)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
