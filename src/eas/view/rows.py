"""Which scored rows a page or a figure shows, and what each row's curve is (pure checks).

One row picker (``pick_rows``, for ``eas view`` and ``eas plot trajectory``), the checks
of what a drawable row must carry (``check_view_row``, ``require_trajectory``), the model
name a scored file's manifest gives (``manifest_model``), and ``row_curve``: what the
row's ``trajectory`` is.

Three kinds of row (``RowKind``), told apart by their columns:

* ``exact``: ``trajectory`` is ``H_1 .. H_{T-1}``, every position probed; ``eas`` is
  their sum.
* ``strided`` (``eas score --probe-stride k``): ``trajectory`` holds the probed values
  only and ``trajectory_t`` their positions t (1-based, increasing, the last one T-1);
  the positions in between were not probed. ``eas`` is the stratified estimate
  (``eas.maths.stratified``), not the sum of the probed values.
* ``amortised`` (``eas_method: "amortised"``): ``trajectory`` is ``H_1 .. H_{T-1}``
  predicted by a head from one forward pass; no probe ran.

A row of the calibration slice of ``--amortised auto`` (``eas_method: "exact"``) is exact.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eas.records import InputError

RowKind = Literal["exact", "strided", "amortised"]
SHOWN_IDS = 5
RESCORE = "rescore with `eas score ... --trajectory --keep-input`"


class ViewError(ValueError):
    """A row the page cannot show truthfully (e.g. token spans outside the response)."""


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


@dataclass(frozen=True)
class RowCurve:
    """A row's entropy curve as what it is.

    Attributes:
        kind: ``exact``, ``strided`` or ``amortised`` (see the module docstring).
        t: the positions (1-based) that have a value, increasing.
        values: the value at each of ``t``, in bits; ``None`` where not finite.
        positions: T-1, the number of positions before x_T.
        stride: the probe stride k of a strided row (else ``None``).
        eas: the row's own ``eas`` (the estimate for strided rows, the prediction for
            amortised ones), ``None`` when the row has none.
    """

    kind: RowKind
    t: tuple[int, ...]
    values: tuple[float | None, ...]
    positions: int
    stride: int | None = None
    eas: float | None = None

    def dense(self) -> list[float | None]:
        """``H_1 .. H_{T-1}``: the values at their positions, ``None`` where not probed."""
        out: list[float | None] = [None] * self.positions
        for t, h in zip(self.t, self.values, strict=True):
            out[t - 1] = h
        return out

    @property
    def probed(self) -> int:
        """How many positions have a value (probes run, or predictions)."""
        return len(self.t)

    def describe(self) -> str:
        """What the curve is, in a few words: ``stride 4, 14 of 56 probed``, ``predicted``, ``56 probes``.

        Example:
            >>> RowCurve("strided", (3, 4), (1.0, 0.5), 4, stride=2).describe()
            'stride 2, 2 of 4 probed'
        """
        if self.kind == "strided":
            return f"stride {self.stride}, {self.probed} of {self.positions} probed"
        if self.kind == "amortised":
            return "predicted"
        return f"{self.positions} probe{'s' if self.positions != 1 else ''}"


def row_kind(row: Mapping[str, Any]) -> RowKind:
    """``amortised`` for ``eas_method: amortised``, ``strided`` with ``trajectory_t``, else ``exact``."""
    if row.get("eas_method") == "amortised":
        return "amortised"
    return "strided" if row.get("trajectory_t") is not None else "exact"


def row_curve(row: Mapping[str, Any]) -> RowCurve:
    """The curve of a row with a ``trajectory``, checked against its own columns.

    Raises:
        ViewError: naming the row's id, when ``trajectory``, ``trajectory_t``,
            ``answer_end_token`` and ``n_probes`` disagree.

    Example:
        >>> c = row_curve({"id": "a", "trajectory": [2.0, 1.0], "trajectory_t": [2, 4],
        ...                "answer_end_token": 5, "probe_stride": 2, "eas": 6.0})
        >>> c.dense(), c.describe(), c.eas
        ([None, 2.0, None, 1.0], 'stride 2, 2 of 4 probed', 6.0)
    """
    rid = row.get("id")
    raw = list(row.get("trajectory") or [])
    values = tuple(_finite(h) for h in raw)
    kind = row_kind(row)
    end = _int(row.get("answer_end_token"))
    eas = _finite(row.get("eas"))
    if kind != "strided":
        if end is not None and raw and end != len(raw) + 1:
            raise ViewError(f"row {rid!r}: answer_end_token {end} but {len(raw)} trajectory values")
        return RowCurve(kind, tuple(range(1, len(raw) + 1)), values, len(raw), None, eas)
    ts = row.get("trajectory_t")
    if not isinstance(ts, Sequence) or any(_int(t) is None for t in ts):
        raise ViewError(f"row {rid!r}: trajectory_t is not a list of positions: {ts!r}")
    if len(ts) != len(raw):
        raise ViewError(f"row {rid!r}: {len(raw)} trajectory values but {len(ts)} positions in trajectory_t")
    if any(b <= a for a, b in itertools.pairwise(ts)) or (ts and ts[0] < 1):
        raise ViewError(f"row {rid!r}: trajectory_t must be increasing positions >= 1")
    positions = end - 1 if end is not None else _int(row.get("n_probes"))
    if positions is None:
        positions = ts[-1] if ts else 0
    if ts and ts[-1] > positions:
        raise ViewError(f"row {rid!r}: probed position {ts[-1]} lies beyond T-1 = {positions}")
    return RowCurve("strided", tuple(ts), values, positions, _int(row.get("probe_stride")), eas)


def _known_ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS]) + (", ..." if len(ids) > SHOWN_IDS else "")
    return f"ids in the file: {shown} ({len(ids)} rows)"


def pick_rows(rows: Sequence[Mapping[str, Any]], wanted: Sequence[str], source: str) -> list[Mapping[str, Any]]:
    """The rows of the ``wanted`` ids, in that order (ids compared as text).

    Raises:
        InputError: an id no row has, naming the closest ids and a few of the file's.
    """
    by_id = {str(r.get("id")): r for r in rows}
    picked = []
    for rid in wanted:
        if rid not in by_id:
            close = difflib.get_close_matches(rid, list(by_id), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise InputError(f"{source}: no row with id {rid!r}{hint}; {_known_ids(list(by_id))}")
        picked.append(by_id[rid])
    return picked


def require_trajectory(row: Mapping[str, Any], source: str) -> RowCurve:
    """The curve of a row that must have one (``eas plot trajectory``).

    Raises:
        InputError: the row has no trajectory, or one that disagrees with its columns.
    """
    if not row.get("trajectory"):
        raise InputError(f"{source}: row {row.get('id')!r} has no trajectory (score with --trajectory)")
    try:
        return row_curve(row)
    except ViewError as exc:
        raise InputError(f"{source}: {exc}") from None


def check_view_row(row: Mapping[str, Any], source: str, study: bool, response_field: str = "response") -> None:
    """A row of the token view must carry its text and token spans.

    A study's question (``study``) needs only its text when the study wrote its
    ``token_spans`` column: a question none of whose samples has a boxed answer was not
    scored, and a study under ``--probe-stride`` keeps no per-position values; the page
    shows such a question's text with a note.

    Raises:
        InputError: with the command that writes what is missing.
    """
    rid = row.get("id")
    if study and (row.get("score_error") or ("token_spans" in row and isinstance(row.get("response"), str))):
        return  # a question not scored, or scored without positions: shown as text, with a note saying why
    again = "rerun the study with this version of eas" if study else RESCORE
    if row.get("token_spans") is None:
        raise InputError(
            f"{source}: row {rid!r} has no token_spans (the character span of each response token, "
            f"written with --trajectory by this version of eas): {again}"
        )
    if not isinstance(row.get("response"), str):
        if study:
            raise InputError(f"{source}: row {rid!r} has no response text: {again}")
        raise InputError(
            f"{source}: row {rid!r} has no {response_field!r} field: {RESCORE} (--keep-input copies the "
            "prompt and response), or name the field with --response-field"
        )


def manifest_model(scored: str | Path) -> str | None:
    """The model a scored file was made with, from the manifest beside it (``None`` if unknown).

    The backend's own description (what it loaded) comes first, then the run's settings.
    """
    from eas.storage.parts import read_manifest

    manifest = read_manifest(scored)
    queue = [manifest.get("backend"), manifest.get("settings")]
    while queue:  # breadth first: a run's own description before nested ones (a backend spec, ...)
        place = queue.pop(0)
        if not isinstance(place, Mapping):
            continue
        model = place.get("model")
        if isinstance(model, str) and model:
            return model
        queue += [v for v in place.values() if isinstance(v, Mapping)]
    return None
