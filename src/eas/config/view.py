"""Settings of the token-level view (eas view)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import get_args

from eas.config.fields import Layout, setting


@dataclass(frozen=True)
class ViewConfig:
    """The token-level page of scored traces (``eas view``, ``eas.view.render``)."""

    layout: Layout = setting(
        "auto",
        "single, side (side by side) or list (sorted by EAS, each trace drawn when opened); auto: single "
        "for one trace, side by side for up to max_side_by_side, a list for more",
    )
    vmax: float | None = setting(
        None,
        "top of the colour scale in bits (default: the color_percentile percentile of the page's finite H_t; "
        "higher values get the top colour)",
        metavar="BITS",
    )
    color_percentile: float = setting(99.0, "the percentile of H_t that tops the colour scale when vmax is not given")
    max_side_by_side: int = setting(3, "the most traces layout auto puts side by side")

    def __post_init__(self) -> None:
        if self.layout not in get_args(Layout):
            raise ValueError(f"layout must be one of {', '.join(get_args(Layout))}, not {self.layout!r}")
        if self.vmax is not None and not (math.isfinite(self.vmax) and self.vmax > 0):
            raise ValueError(f"vmax must be a finite number of bits > 0, not {self.vmax!r}")
        if not 0 < self.color_percentile <= 100:
            raise ValueError("color_percentile must be in (0, 100]")
        if self.max_side_by_side < 1:
            raise ValueError("max_side_by_side must be >= 1")
