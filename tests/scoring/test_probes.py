import pytest

from eas.config import EASConfig
from eas.records import Record, RecordError
from eas.scoring.probes import answer_end_char, encode_record, token_at_char


def _x_t(tokenizer, response: str) -> str:
    """The text of token x_T for a response, as the scorer locates it."""
    enc = encode_record(tokenizer, Record("r", "q", response), EASConfig())
    return tokenizer.decode(enc.response_ids[enc.answer_end - 1 : enc.answer_end])


@pytest.mark.parametrize(
    ("response", "x_t"),
    [
        (r"So \boxed{42}.", "2"),  # digits are single tokens: the answer is split, last wins
        (r"thus \boxed{\frac{1}{2}} done", "}}"),  # nested: the content ends with the } of {2}
        (r"first \boxed{7}, finally \boxed{8} and more text after", "8"),  # several boxes, text after
        (r"\boxed{123456}", "6"),
        (r"\boxed{)}", ")}"),  # the closing brace merged into the last answer token
        (r"\boxed{a}}", "a"),  # a stray brace after the box
    ],
)
def test_x_t_is_the_token_holding_the_last_answer_character(tokenizer, response, x_t):
    assert _x_t(tokenizer, response) == x_t


def test_layout(tokenizer):
    rec = Record("r", "What is 1+1?", r"1+1=2 so \boxed{2}")
    enc = encode_record(tokenizer, rec, EASConfig())
    assert tokenizer.convert_ids_to_tokens(enc.suffix_ids) == ["\\", "box", "ed", "{"]
    assert enc.n_probes == enc.answer_end - 1 == len(enc.response_ids) - 2  # '2', '}' at the end
    assert (
        enc.prompt_ids
        == tokenizer.apply_chat_template(
            [{"role": "user", "content": rec.prompt}], add_generation_prompt=True, tokenize=True
        )["input_ids"]
    )
    assert enc.probe_context(3) == enc.prompt_ids + enc.response_ids[:3] + enc.suffix_ids


def test_raw_prompt_and_answer_prefix(tokenizer):
    rec = Record("r", "What is 1+1?", r"so \boxed{12}", answer="12")
    enc = encode_record(tokenizer, rec, EASConfig(use_chat_template=False, answer_prefix_tokens=1))
    assert enc.prompt_ids == tokenizer("What is 1+1?")["input_ids"]
    assert enc.suffix_ids[-1] == tokenizer("1", add_special_tokens=False)["input_ids"][0]
    assert len(enc.suffix_ids) == 5


def test_end_response_probes_every_position(tokenizer):
    rec = Record("r", "q", "no boxed answer here  ")
    enc = encode_record(tokenizer, rec, EASConfig(end="response"))
    assert enc.answer_end == len(enc.response_ids) or tokenizer.decode(enc.response_ids[enc.answer_end :]).strip() == ""


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("", "empty response"),
        ("   \n", "empty response"),
        ("the answer is 4", "no \\boxed"),
        (r"\boxed{}", "empty"),
        (r"\boxed{4", "never closed"),
    ],
)
def test_bad_records(tokenizer, response, reason):
    with pytest.raises(RecordError, match=reason.replace("\\", "\\\\")):
        encode_record(tokenizer, Record("r", "q", response), EASConfig())


def test_too_long_for_the_context(tokenizer):
    with pytest.raises(RecordError, match="context of 8"):
        encode_record(tokenizer, Record("r", "q", r"one two three \boxed{4}"), EASConfig(), max_context=8)


def test_answer_prefix_needs_an_answer(tokenizer):
    with pytest.raises(RecordError, match="needs a non-empty 'answer'"):
        encode_record(tokenizer, Record("r", "q", r"\boxed{4}"), EASConfig(answer_prefix_tokens=2))


def test_token_at_char_gap_takes_next_token():
    assert token_at_char([(0, 2), (3, 5)], 2) == 1
    assert token_at_char([(0, 2), (2, 5)], 4) == 1
    assert answer_end_char(r"a \boxed{xy} b", "answer") == 10
