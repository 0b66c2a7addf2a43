"""Progress bars: plain periodic lines, never carriage returns or cursor codes, off a terminal."""

from __future__ import annotations

import io

from eas.progress import PlainBar, progress_bar


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_at_the_interval_and_at_the_end(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("eas.progress.time.monotonic", clock)
    stream = io.StringIO()
    bar = PlainBar(stream, total=10, desc="scoring", unit="rec", interval_s=30)
    bar.update(2)
    clock.now += 10
    bar.update(2)  # 10 s in: not yet
    clock.now += 20
    bar.update(1)  # 30 s in: 5 of 10 at 5/30 rec/s, 30 s left
    clock.now += 10
    bar.update(5)
    bar.close()
    assert (
        stream.getvalue()
        == "scoring: 5/10 rec (50%), 0.17 rec/s, 30 s left\nscoring: 10/10 rec (100%), 0.25 rec/s, 40 s\n"
    )


def test_off_a_terminal_the_bar_writes_plain_lines(capsys):
    with progress_bar(True, total=3, desc="sampling", unit="sample") as bar:
        bar.update(3)
    err = capsys.readouterr().err
    assert err.startswith("sampling: 3/3 sample (100%)") and err.endswith("\n")
    assert "\r" not in err and "\x1b" not in err and err.count("\n") == 1


def test_disabled_writes_nothing(capsys):
    with progress_bar(False, total=3) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


def test_the_last_update_leaves_the_line_to_close(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("eas.progress.time.monotonic", clock)
    stream = io.StringIO()
    bar = PlainBar(stream, total=2, interval_s=30)
    clock.now += 60
    bar.update(2)  # long after the interval, but the work is done
    bar.close()
    assert stream.getvalue() == "scoring: 2/2 rec (100%), 0.03 rec/s, 60 s\n"
