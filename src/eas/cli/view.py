"""``eas view``: scored traces token by token, in one self-contained HTML page.

Reads a scored file (``eas score --trajectory --keep-input``) or a study folder and
writes the page of ``eas.view.page``; which rows (``--id``) and what a row must carry are
``eas.view.rows``'. No model is loaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from eas.cli import options
from eas.cli.common import EXIT_OK, UsageError
from eas.config import ViewConfig
from eas.storage.inputs import FieldMap

EXAMPLES = """examples:
  eas score traces.jsonl --trajectory --keep-input --out scored.jsonl
  eas view scored.jsonl --id q17/0 --out q17.html                # one trace
  eas view scored.jsonl --id q17/0 --id q3/0 --out compare.html  # side by side
  eas view study/ --out study/traces.html                        # every question of a study, sorted by EAS

The page: the response cut into its tokens exactly as the model saw them, each token's
background shaded by H_t (the forced-answer entropy after that token, one colour scale for
the page, in bits); x_T outlined and the boxed answer underlined; the trajectory H_1..H_{T-1}
above it (hover a token or the curve: t, H_t, the token and, for multiple choice, each
option's probability; click the curve to scroll to its token); the prompt collapsed; a
header with EAS, mean EAS, final entropy, the answer and, when known, the truth and
whether it is correct. Rows scored with --probe-stride k have H_t at their probed positions
only (the other tokens are marked not probed; EAS is the estimate, with eas_se); amortised
rows (eas_method: amortised) show predicted H_t, labelled predicted. The model in the
header comes from the row, --model-name, or the scored file's manifest.
The file loads nothing (works offline); model text is escaped.
Open a trace of a many-trace page with OUT#id=<id>."""


def _rows(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None, bool]:
    """The rows to show, the model name if known, and whether they come from a study."""
    from eas.storage.files import read_table
    from eas.view.page import read_study
    from eas.view.rows import check_view_row, manifest_model, pick_rows

    source = Path(args.input)
    if source.is_dir():
        rows, model = read_study(source)
        study = True
    else:
        rows, model, study = read_table(source), manifest_model(source), False
        for row in rows:
            for key, field in (("response", args.response_field), ("prompt", args.prompt_field)):
                if field != key:
                    row[key] = row.get(field)
    if not rows:
        raise UsageError(f"{source}: no rows")
    if args.id:
        rows = pick_rows(rows, args.id, str(source))
    for row in rows:
        check_view_row(row, str(source), study, args.response_field)
    return rows, model, study


def cmd_view(args: argparse.Namespace) -> int:
    from eas.view.page import ViewError, render

    options.build(ViewConfig, args)  # a bad --layout/--vmax fails before any file is read
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{out}: the page is HTML; name it .html")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: output folder does not exist")
    rows, model, study = _rows(args)
    title = args.title
    if title is None and study and not args.id:
        title = f"{Path(args.input).resolve().name}: {len(rows)} questions, sample 0 of each, sorted by EAS"
    try:
        page = render(rows, title=title, model=args.model_name or model, layout=args.layout, vmax=args.vmax)
    except ViewError as exc:
        raise UsageError(f"{args.input}: {exc}") from None
    out.write_text(page, encoding="utf-8")
    size = len(page.encode("utf-8"))
    print(f"{out}: {len(rows)} trace{'s' if len(rows) != 1 else ''}, {size / 1024:.0f} kB; open it in a browser")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view",
        help="scored traces token by token, shaded by H_t, in one HTML page (no model needed)",
        description="Write one self-contained HTML page that shows scored traces token by token. INPUT is a file "
        "scored with `eas score --trajectory --keep-input` (.jsonl or .parquet; it holds the token spans and the "
        "text) or the output folder of `eas study` / `eas demo` (every question, sample 0, sorted by EAS).",
        epilog=EXAMPLES,
    )
    p.add_argument("input", help="scored .jsonl/.parquet (with --trajectory --keep-input), or a study folder")
    p.add_argument("--out", required=True, help="the page, .html")
    p.add_argument(
        "--id",
        action="append",
        metavar="ID",
        help="the row to show (repeat it: 2-3 ids side by side, more as a list); default: every row",
    )
    options.add_fields(
        p,
        ViewConfig,
        ("layout", "vmax"),
        helps={
            "vmax": f"top of the colour scale in bits (default: the {ViewConfig.color_percentile:g}th percentile of "
            "the page's H_t)"
        },
    )
    p.add_argument("--title", default=None, help="page title (default: the id, or the number of traces)")
    p.add_argument("--model-name", default=None, help="model name in the header, for rows without a 'model' field")
    options.add_fields(
        p,
        FieldMap,
        ("response", "prompt"),
        dests={"response": "response_field", "prompt": "prompt_field"},
        helps={"response": "the response text's field in INPUT", "prompt": "the prompt's field in INPUT"},
    )
    p.set_defaults(func=cmd_view)
