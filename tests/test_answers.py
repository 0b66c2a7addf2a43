import pytest

from eas.answers import extract_boxed, last_boxed_span


@pytest.mark.parametrize(
    ("text", "content"),
    [
        (r"\boxed{42}", "42"),
        (r"so \boxed{\frac{1}{2}} done", r"\frac{1}{2}"),
        (r"first \boxed{1}, then \boxed{2}.", "2"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{a_{i_{j}}} end", "a_{i_{j}}"),
        (r"no box here", None),
        (r"\boxed{3", None),
    ],
)
def test_extract_boxed(text, content):
    assert extract_boxed(text) == content


def test_unclosed_last_box_raises():
    with pytest.raises(ValueError, match="never closed"):
        last_boxed_span(r"\boxed{1} and \boxed{2")


def test_span_points_into_the_text():
    text = r"x \boxed{ab} y"
    span = last_boxed_span(text)
    assert (span.start, span.end) == (9, 11)
    assert text[span.end - 1] == "b"
