"""Options built from the settings dataclasses: every default once, errors that name the flag."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from dataclasses import dataclass
from typing import Literal

import pytest
from support import write_jsonl

from eas.cli import build_parser, main, options
from eas.cli.__init__ import _subcommands
from eas.cli.errors import UsageError
from eas.config import setting

# Options whose default belongs to the command line alone (no library setting has it).
CLI_ONLY = {
    ("eas score", "--engine"): "local",  # the Ray engine is asked for; RayOptions has no 'local'
    ("eas demo", "--out"): "demo_out",
    ("eas correlate", "--out"): ".",
    # eas.integrations.cli resolves --layout auto from the input's column names itself
    ("eas score", "--layout"): "auto",
    ("eas select", "--layout"): "auto",
}
TRIVIAL = (None, False, argparse.SUPPRESS)


def _parsers():
    parser = build_parser()
    return [(parser.prog, parser), *((p.prog, p) for p in _subcommands(parser))]


def _source_default(source, name):
    """The library's own default, found without eas.cli.options."""
    if dataclasses.is_dataclass(source) and isinstance(source, type):
        (f,) = [f for f in dataclasses.fields(source) if f.name == name]
        return f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if dataclasses.is_dataclass(source):
        return getattr(source, name)
    return inspect.signature(source).parameters[name].default


def test_every_cli_default_is_its_library_default():
    checked = 0
    for prog, parser in _parsers():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            flag = action.option_strings[-1] if action.option_strings else action.dest
            source = getattr(action, "eas_source", None)
            if source is not None:
                assert action.default == _source_default(*source), (prog, flag)
                checked += 1
            elif action.default not in TRIVIAL:
                assert CLI_ONLY.get((prog, flag)) == action.default, f"{prog} {flag}: a default of its own"
    assert checked > 80  # every command's settings go through eas.cli.options


def test_help_shows_each_default_from_the_dataclass(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    options_text = " ".join(capsys.readouterr().out.split("training:", 1)[1].split())
    for flag, default in (("--epochs", "2.0"), ("--lr", "1e-05"), ("--batch-size", "4"), ("--grad-accum", "1")):
        line = options_text.split(f"{flag} ", 1)[1].split(" --", 1)[0]  # the option's help
        assert len(line) > 30 and line.endswith(f"(default: {default})"), (flag, line)


@dataclass(frozen=True)
class Toy:
    name: str = setting("toy", "a name with 50% of the letters")
    count: int = setting(3, "how many", metavar="N")
    scale: float | None = setting(None, "a scale (default: none)")
    mode: Literal["a", "b"] = setting("a", "the mode")
    tags: tuple[str, ...] = setting(("x", "y"), "tags, comma-separated")
    on: bool = setting(True, "on by default", flag="--off", flag_help="turn it off")
    extra: bool = setting(False, "an extra switch")
    n: int = setting(1, "one letter", short="-n", flag="--number")

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be >= 1, not {self.count}")
        if self.n < 1:
            raise ValueError("n must be >= 1 (count is not n)")


def _toy_parser():
    p = argparse.ArgumentParser()
    options.add_fields(p.add_argument_group("toy"), Toy, [f.name for f in dataclasses.fields(Toy)])
    return p


def test_options_take_type_choices_switches_and_help_from_the_field():
    p = _toy_parser()
    args = p.parse_args([])
    assert options.build(Toy, args) == Toy()
    args = p.parse_args(
        ["--count", "5", "--scale", "0.5", "--mode", "b", "--tags", "p, q", "--off", "--extra", "-n", "2"]
    )
    assert options.build(Toy, args) == Toy(count=5, scale=0.5, mode="b", tags=("p", "q"), on=False, extra=True, n=2)
    with pytest.raises(SystemExit):
        p.parse_args(["--mode", "c"])
    text = p.format_help()
    assert "50% of the letters (default: toy)" in text and "%%" not in text
    assert "--count N" in text and "(default: x,y)" in text and "turn it off" in text
    assert "-n NUMBER, --number NUMBER" in text


def test_a_bad_value_is_reported_with_its_flag():
    p = _toy_parser()
    with pytest.raises(UsageError) as exc:
        options.build(Toy, p.parse_args(["--count", "0"]))
    assert str(exc.value) == "--count must be >= 1, not 0"
    with pytest.raises(UsageError) as exc:
        options.build(Toy, p.parse_args(["-n", "0"]))
    assert str(exc.value) == "--number must be >= 1 (--count is not n)"  # a one-letter field only where it opens


@pytest.mark.parametrize(
    ("argv", "flag", "field"),
    [
        (["study", "Q", "--out", "o", "--probe-stride", "0"], "--probe-stride", "probe_stride"),
        (["study", "Q", "--out", "o", "-n", "0"], "--samples", "n must"),
        (["study", "Q", "--out", "o", "-n", "2", "--score-samples", "3"], "--score-samples", "score_samples"),
        (["study", "Q", "--out", "o", "--top-p", "0"], "--top-p", "top_p"),
        (["sample", "Q", "--out", "o.jsonl", "--extract", "boxed,nope"], "--extract", ": extract:"),
        (["sample", "Q", "--out", "o.jsonl", "--backend", "openai", "--top-k", "0"], "--top-k", "top_k"),
        (["train", "R", "--out", "run", "--val-fraction", "1.5"], "--val-fraction", "val_fraction"),
        (
            ["select", "R", "--strategy", "eas", "--budget", "2", "--out", "p.jsonl", "--probe-stride", "0"],
            "--probe",
            "probe_",
        ),
        (["view", "R", "--out", "v.html", "--vmax", "0"], "--vmax", ": vmax"),
    ],
)
def test_validation_errors_name_the_flag(tmp_path, monkeypatch, capsys, argv, flag, field):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "Q", [{"id": "q", "question": "1+1?", "answer": "2"}])
    write_jsonl(tmp_path / "R", [{"id": "r", "prompt": "1+1?", "response": "\\boxed{2}"}])
    import eas.backends.load as load

    monkeypatch.setattr(load, "load_backend", lambda *a, **k: pytest.fail("no model is loaded for a bad option"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err and field not in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
