"""Command-line options built from the settings dataclasses, so each default exists once.

A setting's default and description live in its dataclass (``eas.config.setting``).
``add_fields`` turns chosen fields into options of a parser or argument group: the
field's default, its help (with the default appended), its type and choices (from the
annotation: ``int``, ``float | None``, a ``Literal``, ``tuple[str, ...]`` as a
comma-separated list, ``bool`` as a switch) and its flag (``--field-name`` unless the
metadata names another; ``flag_help`` is the help of a switch that turns a field off).
The parser remembers which option holds which field, so
``build`` makes the dataclass from the parsed arguments and an invalid value is reported
with its flag (``--probe-stride must be ...``), never the Python field's name.

``add_param`` does the same for a keyword default of a library function (``--model``
is ``load_backend``'s ``model``). Every option made here carries ``eas_source``, where
its default comes from; a test walks every command's options and checks each default
against its source, and that no other option states a default of its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eas.cli.errors import UsageError

# The parsed arguments' attribute that maps each dataclass to {field: (dest, flag)}.
REGISTRY = "_eas_options"


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,c"`` -> ``("a", "b", "c")`` (the type of a ``tuple[str, ...]`` option)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _help(text: str, default: Any) -> str:
    """argparse formats help with ``%``: escape it, and append the default unless it says nothing."""
    text = text.replace("%", "%%")
    if default is None or isinstance(default, bool) or default == ():
        return text
    return f"{text} (default: {_shown(default).replace('%', '%%')})"


def _value_type(annotation: Any) -> tuple[Any, tuple[Any, ...] | None]:
    """(argparse ``type``, choices) of a field's annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _value_type(inner)
    if origin is typing.Literal:
        return str, typing.get_args(annotation)
    if origin is tuple:
        return comma_list, None
    if annotation in (int, float, str):
        return annotation, None
    raise TypeError(f"no command-line type for {annotation!r}")


def field_default(source: Any, name: str) -> Any:
    """The default of field ``name``: the instance's value, or the class's default."""
    if not isinstance(source, type):
        return getattr(source, name)
    (f,) = [f for f in dataclasses.fields(source) if f.name == name]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def _register(container: Any, cls: type, name: str, dest: str, flag: str) -> None:
    # An argument group shares its parser's defaults, so this lands on the (sub)command.
    table = {k: dict(v) for k, v in container._defaults.get(REGISTRY, {}).items()}
    table.setdefault(cls, {})[name] = (dest, flag)
    container.set_defaults(**{REGISTRY: table})


def add_fields(
    container: Any,
    source: Any,
    names: Sequence[str],
    *,
    flags: Mapping[str, str] | None = None,
    dests: Mapping[str, str] | None = None,
    helps: Mapping[str, str] | None = None,
) -> list[argparse.Action]:
    """Options for fields ``names`` of ``source`` (a dataclass, or an instance whose values are the defaults).

    ``flags`` renames an option for this command (``{"eval_k": "-k"}``), ``dests`` moves
    its value to another attribute (when a command has two fields of one name), ``helps``
    replaces the help of a field whose class has none in its metadata. A default is never
    given here: it is the field's.
    """
    cls = source if isinstance(source, type) else type(source)
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    actions = []
    for name in names:
        meta = by_name[name].metadata
        default = field_default(source, name)
        text = (helps or {}).get(name) or meta.get("flag_help") or meta.get("help")
        if not text:
            raise ValueError(f"{cls.__name__}.{name} has no help: give it in the field's metadata")
        flag = (flags or {}).get(name) or meta.get("flag") or "--" + name.replace("_", "-")
        strings = [meta["short"], flag] if meta.get("short") and name not in (flags or {}) else [flag]
        dest = (dests or {}).get(name, name)
        kwargs: dict[str, Any] = {"dest": dest, "default": default, "help": _help(text, default)}
        if hints[name] is bool:
            kwargs["action"] = "store_false" if default else "store_true"
        else:
            kwargs["type"], choices = _value_type(hints[name])
            if meta.get("choices") or choices:
                kwargs["choices"] = meta.get("choices") or choices
            if "choices" not in kwargs:
                kwargs["metavar"] = meta.get("metavar") or flag.lstrip("-").replace("-", "_").upper()
        action = container.add_argument(*strings, **kwargs)
        action.eas_source = (source, name)
        _register(container, cls, name, dest, flag)
        actions.append(action)
    return actions


def add_param(container: Any, func: Callable[..., Any], name: str, *strings: str, help: str, **kwargs: Any) -> Any:
    """An option whose default is the keyword default ``name`` of the library function ``func``."""
    default = inspect.signature(func).parameters[name].default
    if default is inspect.Parameter.empty:
        raise ValueError(f"{func.__name__}({name}) has no default")
    if "type" not in kwargs and "action" not in kwargs and default is not None and "choices" not in kwargs:
        kwargs["type"] = type(default)
    action = container.add_argument(*strings, default=default, help=_help(help, default), **kwargs)
    action.eas_source = (func, name)
    return action


def fields_given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The values of ``cls``'s fields that this command has options for, by field name."""
    table = getattr(args, REGISTRY, {}).get(cls, {})
    return {name: getattr(args, dest) for name, (dest, _) in table.items()}


def flagged(message: str, args: argparse.Namespace, cls: type) -> str:
    """``message`` with the fields of ``cls`` that this command has as options named by their flags."""
    table = getattr(args, REGISTRY, {}).get(cls, {})
    for name, (_, flag) in sorted(table.items(), key=lambda item: -len(item[0])):
        if len(name) == 1:  # a one-letter field is renamed only where it opens the message
            if message.startswith(f"{name} "):
                message = flag + message[1:]
            continue
        message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, message)
    return message


def build(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """``cls`` from the options of ``add_fields`` (and ``given``); ``UsageError`` naming the flag."""
    values = {**fields_given(args, cls), **given}
    try:
        return cls(**values)
    except ValueError as exc:
        raise UsageError(flagged(str(exc), args, cls)) from None


def usage_error(
    exc: ValueError, args: argparse.Namespace, *classes: type, flags: Mapping[str, str] | None = None
) -> UsageError:
    """A library ``ValueError`` about fields of ``classes`` (or the names in ``flags``, for
    options a command adds itself) as a ``UsageError`` naming their flags."""
    message = str(exc)
    for cls in classes:
        message = flagged(message, args, cls)
    for name, flag in (flags or {}).items():
        message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, message)
    return UsageError(message)
