"""What the commands share: option groups (built by ``eas.cli.options`` from the settings
dataclasses, so no default is written here), model loading that fails fast, exit codes, errors."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from eas.backends.load import load_backend
from eas.cli import options
from eas.cli.errors import EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, UsageError
from eas.config import EASConfig, ModelOptions, SamplingConfig, ServerConfig
from eas.storage.inputs import FieldMap

__all__ = ["EXIT_OK", "EXIT_SKIPPED", "EXIT_USAGE", "UsageError"]

TRAIN_DTYPE_HELP = (
    "the compute dtype of training (autocast; auto: bfloat16 on a GPU, float32 elsewhere); the weights and "
    "optimizer state stay float32 (master weights) unless --pure-bf16"
)
MODEL_HELP = (
    "'embedded' (SmolLM2-135M-Instruct, shipped in a package), a GGUF file (PATH.gguf: dequantized once "
    "into a checked cache, then reused), a local folder, or a model id (org/name) of the local Hugging Face "
    "cache or the hub"
)


def add_model_args(p: argparse.ArgumentParser, dtype_help: str | None = None) -> None:
    """--model, --device, --dtype, --trust-remote-code (``ModelOptions``; the model is ``load_backend``'s)."""
    g = p.add_argument_group("model")
    options.add_param(g, load_backend, "model", "--model", help=MODEL_HELP)
    names = ("device", "dtype", "trust_remote_code")
    options.add_fields(g, ModelOptions, names, helps={"dtype": dtype_help} if dtype_help else None)


def add_backend_args(p: argparse.ArgumentParser, ray: bool = True) -> None:
    """The --backend hf|openai options (``ServerConfig``) and, with ``ray``, the Ray engine's (``RayOptions``)."""
    g = p.add_argument_group("backend (serving engines)")
    options.add_param(
        g,
        load_backend,
        "backend",
        "--backend",
        choices=["hf", "openai"],
        help="hf: the model in this process, exact entropies; openai: an OpenAI-compatible server "
        "(vLLM, SGLang, llama.cpp) with top-K entropies and their bound (columns eas_bound, min_topk_mass)",
    )
    names = ("base_url", "top_k", "concurrency", "timeout_s", "max_retries", "api_key_env")
    options.add_fields(g, ServerConfig, names)
    g.add_argument(
        "--tokenizer",
        default=None,
        help="openai: the model's HF tokenizer, a local folder, an id or a GGUF file (default: 'embedded' for the "
        "embedded GGUF, else --model)",
    )
    if not ray:
        return
    from eas.scoring.ray import CPU_WORKERS, RayOptions

    g = p.add_argument_group("scale-out engine")
    g.add_argument("--engine", choices=["local", "ray"], default="local", help="ray: score on a Ray cluster")
    options.add_fields(
        g,
        RayOptions,
        ("workers", "address", "gpus_per_worker"),
        flags={"address": "--ray-address"},
        dests={"address": "ray_address"},
        helps={
            "workers": f"ray: scoring actors, one model each (default: one per GPU of the cluster, else {CPU_WORKERS})",
            "address": "ray: cluster address, e.g. ray://head:10001 (default: a local Ray instance)",
            "gpus_per_worker": "ray: GPUs per actor (default: 1 on a cluster with GPUs, else 0)",
        },
    )


def check_model_name(name: str) -> None:
    """``eas.backends.load.check_model_name`` as a usage error: a model that cannot be found fails at once."""
    from eas.backends.load import check_model_name as check

    try:
        check(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_model(args: argparse.Namespace) -> None:
    """Fail at once, before any work, when the model named by the options cannot be found.

    With ``--backend openai`` the model is a served name; what must be found is its tokenizer.
    """
    from eas.backends.load import default_tokenizer

    openai = getattr(args, "backend", "hf") == "openai"
    check_model_name((args.tokenizer or default_tokenizer(args.model)) if openai else args.model)


def backend_options(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    """Keyword arguments of ``eas.backends.load.load_backend`` from the parsed options.

    The model is checked first (``check_model``), so a typo fails before any output exists.
    """
    check_model(args)
    server = options.build(ServerConfig, args) if args.backend == "openai" else None
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


def backend_loader(args: argparse.Namespace, engine: Any = None) -> Callable[[], Any]:
    """A function that loads the backend the options name (hf, or openai where the command has
    ``--backend``). Everything that can be checked without loading (the model's name, the
    server settings) is checked now, so a command fails before it creates anything."""
    if hasattr(args, "backend"):
        kwargs = backend_options(args, engine)  # checks the model
    else:
        check_model(args)
        kwargs = {"model": args.model, **model_options(args).kwargs(), "engine": engine}

    def load() -> Any:
        try:
            return load_backend(**kwargs)
        except (OSError, ValueError, ConnectionError) as exc:
            raise model_load_error(args.model, exc) from None

    return load


def load_model_backend(args: argparse.Namespace, engine: Any = None) -> Any:
    """The backend the options name, loaded now; ``UsageError`` with one line when the model
    cannot be found or loaded."""
    return backend_loader(args, engine)()


def backend_spec(args: argparse.Namespace, engine: Any) -> Any:
    """The ``BackendSpec`` named by the model and backend options."""
    from eas.backends.spec import BackendSpec

    return BackendSpec(**backend_options(args, engine))


def add_metric_args(g: Any) -> None:
    """The options that define the metric (trigger, answer prefix, end, chat template), on group ``g``."""
    options.add_fields(g, EASConfig, ("trigger", "answer_prefix_tokens", "end", "use_chat_template"))


def add_stride_args(g: Any) -> None:
    """--probe-stride and --probe-seed (stratified probing; ``EASConfig`` holds both)."""
    options.add_fields(g, EASConfig, ("probe_stride", "probe_seed"))


def model_options(args: argparse.Namespace) -> ModelOptions:
    """The ``ModelOptions`` named by the options of ``add_model_args``."""
    return options.build(ModelOptions, args)


def add_field_args(p: argparse.ArgumentParser) -> None:
    """--id-field, --prompt-field, --response-field, --answer-field (``FieldMap``)."""
    g = p.add_argument_group("input fields")
    # No default: a named id field must exist; without one, 'id' is used where rows have it.
    g.add_argument("--id-field", default=None, help=FieldMap.__dataclass_fields__["id"].metadata["help"])
    names = ("prompt", "response", "answer")
    options.add_fields(g, FieldMap, names, dests={n: f"{n}_field" for n in names})


def fields_from_args(args: argparse.Namespace) -> FieldMap:
    """The ``FieldMap`` named by the options of ``add_field_args``."""
    return options.build(FieldMap, args, id=args.id_field or FieldMap.id)


def add_sampling_args(
    g: Any,
    source: Any = SamplingConfig,
    *,
    seed_flag: str = "--sample-seed",
    batch_flag: str = "--sample-batch",
) -> None:
    """The sampler's options, the same for every command that generates (defaults: ``source``'s).

    Commands that already have a ``--seed`` or ``--batch-size`` of their own (``select``,
    ``train``, ``experiment``) keep the default ``--sample-seed``/``--sample-batch`` names;
    the destinations are the same either way, so ``sampling_from_args`` reads them all.
    """
    options.add_fields(
        g,
        source,
        ("temperature", "top_p", "max_new_tokens", "seed", "batch_size"),
        flags={"seed": seed_flag, "batch_size": batch_flag},
        dests={"seed": "sample_seed", "batch_size": "sample_batch"},
    )


def sampling_from_args(args: argparse.Namespace, **given: Any) -> SamplingConfig:
    """The ``SamplingConfig`` named by the options of ``add_sampling_args`` (and ``-n`` where a command has it)."""
    return options.build(SamplingConfig, args, **given)


def model_load_error(name: str, exc: BaseException) -> UsageError:
    """The one-line usage error for a model that cannot be loaded."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UsageError(f"cannot load model {name!r}: {first}")


def eas_config_from_args(args: argparse.Namespace) -> EASConfig:
    """The ``EASConfig`` of the metric options this command has; the others keep their defaults.

    An ``EASConfig`` field a command adds as a plain option of the same name (``--trajectory``)
    counts too.
    """
    given = {f: getattr(args, f) for f in EASConfig.__dataclass_fields__ if hasattr(args, f)}
    return options.build(EASConfig, args, **given)
