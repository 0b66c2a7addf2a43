"""The field helper every settings dataclass uses, and the names of the settings' literal types."""

from __future__ import annotations

from dataclasses import MISSING, field
from typing import Any, Literal

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
