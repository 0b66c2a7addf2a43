"""Stop rules: the interface, the registry and the ``RULE[:k=v,...]`` parser.

A rule reads the online curve as it grows and says when the model should stop reasoning
(docs/online.md). It is a frozen dataclass whose fields are its settings, with their
defaults (the one place they are defined); ``start()`` gives a fresh checker for one
sample, which takes one ``Step`` per generated token and returns a reason (a short
sentence, written to the sample's row) to stop, or ``None`` to go on. Checkers hold
their own state; nothing else about the decoding reaches them, so the same rule runs
in-process (``eas.sampling.online``) or against a server, and on a recorded curve in a
test.

``parse_rule("plateau:h=0.3,w=16")`` builds a rule from its name and settings; each
rule module registers itself with ``@register``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

PARAGRAPH = "\n\n"


@dataclass(frozen=True)
class Step:
    """One generated token as a rule sees it.

    Attributes:
        t: 1-based index of the token x_t in the response.
        token: its id.
        piece: its text ("" while a multi-byte character is incomplete).
        text: the response so far, x_1 .. x_t.
        entropy: H_t in bits (the forced-answer probe after x_t), or None when no probe ran at t.
        top_prob: the probe's top probability (its most likely answer token), or None.
        area: EAS so far: the sum of H over the probed positions, each counted for the
            positions it stands for (1 each when every token is probed).
        boundary: x_t completes a paragraph boundary (``\\n\\n``).
    """

    t: int
    token: int
    piece: str
    text: str
    entropy: float | None
    top_prob: float | None
    area: float
    boundary: bool


Checker = Callable[[Step], "str | None"]


class StopRule(ABC):
    """Base of every stop rule (a frozen dataclass subclass).

    Attributes:
        name: the rule's name in ``--stop NAME:...`` (class attribute).
        boundary_probes: the rule reads H at paragraph boundaries, so a monitored run
            probes every boundary even when ``--probe-every`` skips that position.
        swept: the setting ``eas early-exit --sweep v1,v2`` varies when the sweep names none
            (the rule's threshold).
    """

    name: ClassVar[str]
    boundary_probes: ClassVar[bool] = False
    swept: ClassVar[str]

    @abstractmethod
    def start(self) -> Checker:
        """A fresh checker for one sample."""

    def spec(self) -> str:
        """The rule as ``name:k=v,...`` (every setting, so a run records what it used)."""
        values = ",".join(f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return f"{self.name}:{values}" if values else self.name


RULES: dict[str, type[StopRule]] = {}
R = TypeVar("R", bound=type[StopRule])


def register(cls: R) -> R:
    """Class decorator: make a rule available to ``parse_rule`` under ``cls.name``."""
    RULES[cls.name] = cls
    return cls


def parse_rule(spec: str) -> StopRule:
    """``NAME`` or ``NAME:k=v,k=v`` -> the rule; ``ValueError`` with a one-line reason.

    Example:
        >>> import eas.sampling.rules  # registers the built-in rules
        >>> parse_rule("budget:n=300")
        Budget(n=300)
    """
    name, _, rest = spec.strip().partition(":")
    cls = RULES.get(name.strip())
    if cls is None:
        raise ValueError(f"unknown stop rule {name!r} (use one of {', '.join(sorted(RULES))})")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            known = ", ".join(fields) or "none"
            raise ValueError(f"stop rule {name}: bad setting {item!r} (settings: {known}; write k=v)")
        kwargs[key] = _convert(name, key, value.strip(), fields[key].default)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"stop rule {name}: {exc}") from None


def parse_sweep(spec: str, sweep: str | None) -> list[StopRule]:
    """The rules of a threshold sweep: ``spec`` (``NAME[:k=v,...]``) with one setting set to
    each value of ``sweep`` (``v1,v2,...`` varies the rule's ``swept`` setting, ``key=v1,v2,...``
    another one); ``sweep`` None: the one rule of ``spec``. ``ValueError`` with a one-line reason.

    Example:
        >>> import eas.sampling.rules  # registers the built-in rules
        >>> [r.n for r in parse_sweep("budget", "64,128")]
        [64, 128]
    """
    base = parse_rule(spec)
    if sweep is None:
        return [base]
    key, eq, values = sweep.partition("=")
    key, values = (key.strip(), values) if eq else (type(base).swept, sweep)
    fields = {f.name: f for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    if key not in fields:
        raise ValueError(f"--sweep: stop rule {base.name} has no setting {key!r} (settings: {', '.join(fields)})")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        raise ValueError(f"--sweep {sweep!r}: give the values, comma-separated")
    rules = []
    for v in items:
        value = _convert(base.name, key, v, fields[key].default)
        try:
            rules.append(dataclasses.replace(base, **{key: value}))  # type: ignore[type-var]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"stop rule {base.name} with {key}={v}: {exc}") from None
    if len({r.spec() for r in rules}) < len(rules):
        raise ValueError(f"--sweep {sweep!r}: a value is repeated")
    return rules


def _convert(rule: str, key: str, value: str, default: Any) -> Any:
    """A setting's text as the type of its default (bool accepts 1/0/true/false/yes/no)."""
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        kind = "true/false" if isinstance(default, bool) else "an integer" if isinstance(default, int) else "a number"
        raise ValueError(f"stop rule {rule}: {key}={value!r} is not {kind}") from None
    return value


def is_boundary(before: str, piece: str) -> bool:
    """Whether appending ``piece`` to text ending with ``before`` completes a ``\\n\\n``."""
    return PARAGRAPH in (before[-1:] + piece)
