"""What a person meets at the command line: fast failures, one line each, quiet and readable output."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from support import write_jsonl

from eas import __version__
from eas.cli import build_parser, main
from eas.cli.__init__ import _subcommands

RECORDS = [{"id": "a", "prompt": "What is 2+3?", "response": "2+3=5, so \\boxed{5}."}]
QUESTIONS = [{"id": "q", "question": "What is 2+3?", "answer": "5"}]


@pytest.fixture
def no_loading(monkeypatch):
    """Any model load fails the test: the typo must be caught before."""
    import eas.backends.load as load

    monkeypatch.setattr(load, "load_model", lambda *a, **k: pytest.fail("a model load was attempted"))
    monkeypatch.setattr(load, "load_tokenizer", lambda *a, **k: pytest.fail("a tokenizer load was attempted"))


def _typo_commands(tmp):
    r = str(write_jsonl(tmp / "r.jsonl", RECORDS))
    q = str(write_jsonl(tmp / "q.jsonl", QUESTIONS))
    m = ["--model", "embeded"]
    return {
        "score": ["score", r, "--out", str(tmp / "out" / "s.jsonl"), *m],
        "score-openai": [
            "score",
            r,
            "--out",
            str(tmp / "out" / "s.jsonl"),
            "--backend",
            "openai",
            "--tokenizer",
            "embeded",
        ],
        "calibrate": ["calibrate", r, "--out", str(tmp / "out" / "head.safetensors"), *m],
        "sample": ["sample", q, "--out", str(tmp / "out" / "samples.jsonl"), *m],
        "study": ["study", q, "--out", str(tmp / "out" / "study"), *m],
        "select": ["select", r, "--strategy", "eas", "--budget", "1", "--out", str(tmp / "out" / "p.jsonl"), *m],
        "train": ["train", r, "--out", str(tmp / "out" / "run"), *m],
        "evaluate": ["evaluate", "embeded", "--questions", q, "--out", str(tmp / "out" / "e.json")],
        "experiment": ["experiment", "selection", "--builtin", "--out", str(tmp / "out" / "x"), *m],
    }


@pytest.mark.parametrize(
    "command", ["score", "score-openai", "calibrate", "sample", "study", "select", "train", "evaluate", "experiment"]
)
def test_a_model_typo_fails_at_once_and_creates_nothing(tmp_path, monkeypatch, capsys, no_loading, command):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "out").mkdir()
    argv = _typo_commands(tmp_path)[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'embedded'?" in err and "Traceback" not in err, err
    assert list((tmp_path / "out").iterdir()) == []  # no OUT.parts/, no folder, no file


def test_q_and_v_are_taken_before_and_after_the_command():
    parser = build_parser()
    base = ["view", "in.jsonl", "--out", "v.html"]
    assert parser.parse_args(base).quiet is False
    assert parser.parse_args(["-q", *base]).quiet is True
    assert parser.parse_args([*base, "-q"]).quiet is True
    assert parser.parse_args([*base, "--verbose"]).verbose is True
    assert parser.parse_args(["plot", "trajectory", "s.jsonl", "--id", "a", "--out", "f.png", "-q"]).quiet is True
    for sub in _subcommands(parser):
        assert "-q" in sub._option_string_actions and "-v" in sub._option_string_actions, sub.prog


def test_eas_alone_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: eas") and "score" in out and "study" in out and "COMMAND --help" in out


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(capsys, flag):
    with pytest.raises(SystemExit) as exc:
        main([flag])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"eas {__version__}"


def test_logging_shows_eas_info_and_only_warnings_of_other_libraries(tmp_path):
    bad = tmp_path / "nothing.jsonl"
    bad.write_text("")
    main(["topk-stats", str(bad)])
    assert logging.getLogger("eas.study").isEnabledFor(logging.INFO)
    assert not logging.getLogger("matplotlib.font_manager").isEnabledFor(logging.INFO)  # the font-cache line
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    main(["topk-stats", str(bad), "-q"])
    assert not logging.getLogger("eas.study").isEnabledFor(logging.INFO)
    main(["topk-stats", str(bad), "-v"])
    assert logging.getLogger("matplotlib.font_manager").isEnabledFor(logging.DEBUG)


def test_transformers_progress_bars_are_off_while_a_command_runs(monkeypatch):
    import transformers.utils.logging as hf_logging

    import eas.cli.scale as scale

    seen = []

    def command(args):
        seen.append((hf_logging.is_progress_bar_enabled(), os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")))
        return 0

    monkeypatch.setattr(scale, "cmd_topk_stats", command)
    before = hf_logging.is_progress_bar_enabled()
    assert main(["topk-stats", "x.jsonl"]) == 0
    assert seen == [(False, "1")]
    assert hf_logging.is_progress_bar_enabled() == before  # restored afterwards
    assert main(["topk-stats", "x.jsonl", "-v"]) == 0
    assert seen[1][0] is before


def test_every_command_help_has_examples(capsys):
    for sub in _subcommands(build_parser()):
        text = sub.format_help()
        assert "examples:\n  eas " in text, sub.prog
        assert "%%" not in text, sub.prog


def _help(capsys, *argv):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_help_gaps_are_closed(capsys):
    text = _help(capsys, "experiment", "selection")
    assert "95% CI" in text and "%%" not in text and "--pure-bf16" not in text
    assert "(default: 200; with --quick: 24)" in " ".join(text.split())
    text = " ".join(_help(capsys, "correlate").split())
    assert "--reference {answer_entropy,correctness_entropy} the uncertainty" in text
    assert "(default: answer_entropy)" in text
    text = " ".join(_help(capsys, "evaluate").split())
    assert "--device DEVICE auto (cuda if a GPU is visible" in text and "(default: auto)" in text
    assert "--dtype {auto,float32,bfloat16,float16} weights and activations" in text
    text = _help(capsys, "study")
    assert "traces.html" in text


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\nfrom eas.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'transformers', 'matplotlib', 'scipy', 'ray', 'pyarrow', 'huggingface_hub')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
