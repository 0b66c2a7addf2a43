"""Property tests: the answer extractor and the x_T locator on arbitrary text."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eas.answers import extract_boxed, last_boxed_span
from eas.config import EASConfig
from eas.records import Record, RecordError
from eas.scoring.probes import encode_record

# Text that cannot open or close a box by itself.
plain = st.text(st.characters(blacklist_characters="{}\\", blacklist_categories=("Cs",)), max_size=40)


@st.composite
def balanced(draw, depth: int = 0) -> str:
    """Box content with balanced (possibly nested) braces."""
    parts = draw(st.lists(plain, min_size=1, max_size=3))
    if depth < 2 and draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), "{" + draw(balanced(depth + 1)) + "}")
    return "".join(parts)


@given(st.text(max_size=200))
def test_extractor_never_raises_on_arbitrary_text(text):
    extract_boxed(text)
    try:
        span = last_boxed_span(text)
    except ValueError:
        return
    if span is not None:
        assert 0 <= span.start <= span.end <= len(text)


@given(before=st.text(max_size=60), content=balanced(), after=plain)
def test_extracted_content_is_what_was_boxed(before, content, after):
    text = f"{before}\\boxed{{{content}}}{after}"
    assert extract_boxed(text) == content


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=60)
@given(before=st.text(max_size=60), content=balanced().filter(lambda c: c != ""), after=plain)
def test_located_token_holds_the_answers_last_character(tokenizer, before, content, after):
    response = f"{before}\\boxed{{{content}}}{after}"
    try:
        enc = encode_record(tokenizer, Record("p", "q", response), EASConfig())
    except RecordError as exc:
        known = ("empty", "never closed", "no \\boxed", "offset mapping does not reach")
        assert any(k in exc.reason for k in known), exc.reason
        return
    last_char = response.rindex("\\boxed{") + len("\\boxed{") + len(content) - 1
    offsets = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    start, end = offsets[enc.answer_end - 1]
    covered = start <= last_char < end
    # A byte-level token can split one character across tokens; then it is the first
    # token that ends after it.
    assert covered or (end > last_char and all(e <= last_char for _, e in offsets[: enc.answer_end - 1]))
