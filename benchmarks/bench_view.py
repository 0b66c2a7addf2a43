"""Size and time to first render of ``eas view`` pages in headless Chromium.

For each case it writes the page (synthetic scored traces, ``tests/support/view_rows.py``) and,
side by side in the same run, a baseline page holding only the same response text in a
``<pre>`` (what one would read without the view). Figures, all from the page's own clock
(milliseconds since navigation start):

* ``layout_ms``: the view's tokens and curves are in the DOM, styled and laid out (its
  script forces the layout), ready to paint: the time to first render, but for the
  paint itself; ``plain_layout_ms`` the same for the baseline, and their ratio;
* ``paint_ms``: two animation frames later, the first frame is painted (``null`` when
  Chromium dumped the DOM before that frame);
* ``hover_ms``: the mean time of one hover (highlight a token, move the marker, fill the
  tooltip), over 200 hovers;
* ``wall_s``: Chromium's wall time for the whole run (start, load, dump).

Each case runs ``--repeats`` times (default 3), each run in fresh browsers; the best
time of each figure is printed. Shared machines are noisy: read the ratios and the
orders of magnitude.
Usage: python benchmarks/bench_view.py [--repeats 3] [--tiny]   (needs chromium: apt-get install chromium)
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import chromium  # noqa: E402
from support.view_rows import synthetic_row  # noqa: E402

from eas import view  # noqa: E402

HOVER_PROBE = """<div id="bench"></div><script>
(function () {
  const v = window.easView, i = +document.querySelector("section.trace").dataset.i;
  v.build(i);
  const n = 200, t0 = performance.now();
  for (let k = 0; k < n; k++) v.hover(i, 1 + ((k * 7919) % 4000));
  void document.body.offsetHeight;
  document.getElementById("bench").textContent = JSON.stringify({hoverMs: (performance.now() - t0) / n});
})();
</script>"""

PLAIN = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{pre}
<div id="eas-state"></div><script>
void document.body.offsetHeight;
document.getElementById("eas-state").textContent = JSON.stringify({{layoutMs: performance.now()}});
</script></body></html>"""


def _state(dom: str, marker: str = 'id="eas-state"') -> dict[str, Any]:
    text = dom.split(marker, 1)[1].split(">", 1)[1].split("</div>", 1)[0]
    return json.loads(html.unescape(text))


def _load(page: str, tmp: Path, fragment: str = "") -> tuple[str, float]:
    path = tmp / "page.html"
    path.write_text(page, encoding="utf-8")
    t0 = time.perf_counter()
    dom = chromium.dump_dom(chromium.page_url(path, fragment))
    return dom, time.perf_counter() - t0


def _best(values: list[float | None]) -> float | None:
    seen = [v for v in values if v is not None]
    return min(seen) if seen else None


def measure(name: str, rows: list[dict[str, Any]], fragment: str = "", repeats: int = 3) -> dict[str, Any]:
    """One case: the view, its hover probe and the plain-text baseline, each in a fresh
    browser, ``repeats`` times; the best (smallest) time of each."""
    page = view.render(rows)
    plain = PLAIN.format(pre="".join(f"<pre>{html.escape(r['response'])}</pre>" for r in rows))
    runs: dict[str, list[float | None]] = {"layout": [], "plain": [], "paint": [], "hover": [], "wall": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            dom, wall = _load(page, Path(tmp), fragment)
            hover, _ = _load(page.replace("</body></html>", HOVER_PROBE + "</body></html>"), Path(tmp))
            base, _ = _load(plain, Path(tmp))
            state = _state(dom)
            runs["layout"].append(state["layoutMs"])
            runs["paint"].append(state["paintMs"])
            runs["plain"].append(_state(base)["layoutMs"])
            runs["hover"].append(
                json.loads(html.unescape(hover.split('<div id="bench">', 1)[1].split("</div>", 1)[0]))["hoverMs"]
            )
            runs["wall"].append(wall)
    layout, plain_layout, paint = _best(runs["layout"]), _best(runs["plain"]), _best(runs["paint"])
    assert layout is not None and plain_layout is not None
    out = {
        "case": name,
        "tokens": sum(len(r["token_spans"]) for r in rows),
        "html_kB": round(len(page.encode()) / 1024),
        "plain_kB": round(len(plain.encode()) / 1024),
        "layout_ms": round(layout),
        "plain_layout_ms": round(plain_layout),
        "layout_vs_plain": round(layout / plain_layout, 2),
        "paint_ms": None if paint is None else round(paint),
        "hover_ms": round(_best(runs["hover"]) or 0.0, 3),
        "wall_s": round(_best(runs["wall"]) or 0.0, 2),
    }
    print(json.dumps(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="one small case, once (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case; the best time is printed")
    args = parser.parse_args(argv)
    r = 1 if args.tiny else args.repeats
    if chromium.find_chromium() is None:
        sys.exit("no chromium: apt-get install chromium (or set $CHROMIUM)")
    if args.tiny:
        return [measure("1 trace, 300 tokens", [synthetic_row(300)], repeats=1)]
    many = [synthetic_row(4000, seed=s, row_id=f"q{s}/0") for s in range(80)]
    return [
        measure("1 trace, 16k tokens", [synthetic_row(16384)], repeats=r),
        measure("1 trace, 16k tokens, 4 options", [synthetic_row(16384, options=True)], repeats=r),
        measure(
            "3 traces side by side, 16k tokens each", [synthetic_row(16384, seed=s, row_id=f"q{s}/0") for s in range(3)]
        ),
        measure("80 traces x 4k tokens, list (none open)", many, repeats=r),
        measure("80 traces x 4k tokens, list, one opened by #id", many, view.trace_anchor("q7/0"), repeats=r),
    ]


if __name__ == "__main__":
    main()
