"""Stop rules for monitored sampling, one module each, in a registry (docs/online.md).

``parse_rule("eat:delta=1e-4")`` builds one; ``RULES`` maps names to classes. The
interface (``Step`` in, a reason or None out) is ``eas.sampling.rules.base``.
"""

from eas.sampling.rules import budget, confidence, eat, plateau  # noqa: F401  (each registers itself)
from eas.sampling.rules.base import RULES, Checker, Step, StopRule, is_boundary, parse_rule, parse_sweep, register

__all__ = ["RULES", "Checker", "Step", "StopRule", "is_boundary", "parse_rule", "parse_sweep", "register"]
