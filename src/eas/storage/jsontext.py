"""JSON as eas writes it: strict JSON, never a ``NaN`` or ``Infinity`` token.

Python's ``json`` writes ``float("nan")`` as the bare token ``NaN`` (and infinities as
``Infinity``), which is not JSON: jq, JavaScript, Arrow and most other readers refuse the
whole line. Every JSON or JSONL file eas writes (results, errors, parts, manifests,
stamps, heads, training logs, experiment results) goes through ``dumps``: a number that
is not finite becomes ``null`` at any depth (inside lists, tuples and dicts too), numpy
scalars and arrays become plain numbers and lists, and ``allow_nan=False`` turns anything
that slipped through into an error instead of an invalid file.

A result row never reaches this point with a non-finite figure (the scorer sends such a
record to the errors file, ``eas.maths.metrics.non_finite_fields``); the nulls here are
for values that may legitimately be undefined (a correlation of constant data, a
validation loss that diverged).
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, at any depth.

    Example:
        >>> finite({"h": [1.0, float("nan")], "t": (float("inf"), 2)})
        {'h': [1.0, None], 't': [None, 2]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return finite(value.tolist())  # a numpy scalar or array
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``finite(value)``, refusing NaN and infinities (``ValueError``) if any remain.

    Example:
        >>> dumps({"eas": float("nan"), "trajectory": [0.5, float("-inf")]})
        '{"eas": null, "trajectory": [0.5, null]}'
    """
    return json.dumps(finite(value), allow_nan=False, **kwargs)
