"""Options of monitored sampling (online EAS, early exit) for ``eas sample`` and ``eas study``.

Built from ``MonitorConfig`` and ``EASConfig`` (``eas.cli.options``: each default exists
once, in the dataclass); the handlers of ``eas.cli.study`` call ``monitor_from_args`` and
pass the result on.
"""

from __future__ import annotations

import argparse
from typing import Any

from eas.cli import options
from eas.cli.errors import UsageError
from eas.config import EASConfig, MonitorConfig

MONITOR_FIELDS = ("probe_every", "stop", "answer_tokens", "trajectory")


def add_monitor_args(p: argparse.ArgumentParser) -> None:
    """``--monitor``, ``--stop``, ``--probe-every``, ``--answer-tokens``, ``--trajectory`` and
    the trigger/end/probe-seed they use (``eas sample``)."""
    g = p.add_argument_group("online EAS (monitored sampling; --backend openai: top-K probes by request)")
    g.add_argument(
        "--monitor",
        action="store_true",
        help="probe after every generated token and write each sample's EAS and the figures of `eas score` "
        "(same samples as without it; no second scoring pass)",
    )
    options.add_fields(g, MonitorConfig, MONITOR_FIELDS)
    options.add_fields(
        g, EASConfig, ("trigger", "end", "probe_seed"), helps={"probe_seed": "seed of --probe-every's positions"}
    )


def monitoring(args: argparse.Namespace) -> bool:
    """Whether the options ask for monitored sampling."""
    return bool(args.monitor or args.stop or args.trajectory or args.probe_every != MonitorConfig.probe_every)


def monitor_from_args(args: argparse.Namespace) -> tuple[EASConfig, MonitorConfig] | None:
    """``(EASConfig, MonitorConfig)`` of the options, or None when not monitoring; bad values -> ``UsageError``."""
    if not monitoring(args):
        return None
    monitor = options.build(MonitorConfig, args)
    eas = options.build(EASConfig, args, probe_stride=monitor.probe_every)
    if monitor.stop:
        from eas.sampling.rules import parse_rule

        try:
            parse_rule(monitor.stop)
        except ValueError as exc:
            raise UsageError(f"--stop: {exc}") from None
    return eas, monitor


def add_online_study_arg(g: Any) -> None:
    """``eas study --online`` (on the study's option group ``g``)."""
    g.add_argument(
        "--online",
        action="store_true",
        help="measure every sample's EAS while sampling it (online probes; --probe-stride K probes one position "
        "in K) instead of scoring the chosen samples in a second pass: the same values (docs/online.md)",
    )


def check_online_backend(backend: Any, server_ok: bool = True) -> Any:
    """The backend, if it can sample with online probes; else a ``UsageError`` with the reason.

    Asked through the backend's capabilities (``eas.backends.base.capabilities``): an
    in-process model probes inside its decoding loop (``watched``; it may still refuse, e.g.
    an attention kernel that takes no mask), a server is driven by the controller
    (``streamed``), which ``eas study --online`` does not use (``server_ok=False``).
    """
    from eas.backends.base import capabilities
    from eas.backends.watch import WatchRefusals

    found = capabilities(backend)
    if "watched" in found:
        reason = backend.watch_unsupported_reason() if isinstance(backend, WatchRefusals) else None
        if reason:
            raise UsageError(f"online probes do not support {reason}")
        return backend
    if "streamed" in found:
        if not server_ok:
            raise UsageError("eas study --online probes inside the decoding loop: use --backend hf")
        return backend
    raise UsageError("online probes need an in-process model (--backend hf) or a server (--backend openai)")
