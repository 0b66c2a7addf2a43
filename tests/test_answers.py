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


# --- extraction modes, equivalence, answer/correctness entropy ----------------------------

from eas.answers import (  # noqa: E402
    NO_ANSWER,
    AnswerMatcher,
    answer_counts,
    choice_letter,
    extract_answer,
    group_answers,
)
from eas.maths.reference import answer_entropy, correctness_entropy, pass_rate  # noqa: E402

CHOICES = ["10", "12", "14", "16"]


@pytest.mark.parametrize(
    ("text", "modes", "choices", "expected"),
    [
        (r"so \boxed{1/2}.", ["boxed"], None, "1/2"),
        ("it is 3,600 pens", ["boxed"], None, None),
        ("it is 3,600 pens", ["boxed", "last-number"], None, "3600"),
        ("-2.5 then 7/8", ["last-number"], None, "7/8"),
        (r"first 3 then \boxed{4}", ["last-number", "boxed"], None, "4"),
        (r"\boxed{B}", ["boxed"], CHOICES, "B"),
        (r"\boxed{(c)}", ["boxed"], CHOICES, "C"),
        (r"\boxed{B) 12}", ["boxed"], CHOICES, "B"),
        (r"\boxed{14}", ["boxed"], CHOICES, "C"),  # the option's own text
        (r"\boxed{13}", ["boxed"], CHOICES, None),  # names no option
        ("I pick (D).", ["boxed", "choice"], CHOICES, "D"),
        ("A dog? No: the answer is B.", ["choice"], CHOICES, "B"),
        (r"\boxed{E}", ["boxed"], CHOICES, None),  # not one of the 4 letters
    ],
)
def test_extract_answer_modes(text, modes, choices, expected):
    assert extract_answer(text, modes, choices) == expected


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="unknown extraction mode"):
        extract_answer("x", ["nope"])


def test_choice_letter_lowercase_only_in_parentheses():
    assert choice_letter("a dog", CHOICES, "ABCD") is None
    assert choice_letter("(a)", CHOICES, "ABCD") == "A"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("0.5", "1/2", True),
        (r"\frac{1}{2}", "0.5", True),
        (r"\frac12", "1/2", True),
        ("2,000", "2000", True),
        ("22.5", "45/2", True),
        ("3", "4", False),
        ("12", "12.", True),
        ("$7$", "7", True),
        ("0.3", "1/3", False),
    ],
)
def test_equivalence(a, b, same):
    assert AnswerMatcher().equivalent(a, b) is same


def test_no_answer_is_equivalent_to_nothing():
    m = AnswerMatcher()
    assert not m.equivalent(None, None)
    assert not m.equivalent(None, "1")


def test_four_distinct_answers_are_two_bits():
    labels = group_answers(["1", "2", "3", "4"])
    assert labels == [0, 1, 2, 3]
    assert answer_entropy(labels) == pytest.approx(2.0)


def test_equivalent_answers_merge():
    labels = group_answers(["0.5", "1/2", r"\frac{1}{2}", "3"])
    assert labels == [0, 0, 0, 1]
    # p = (3/4, 1/4): -(0.75 log2 0.75 + 0.25 log2 0.25) = 0.811278...
    assert answer_entropy(labels) == pytest.approx(0.8112781244591328)
    assert answer_entropy(group_answers(["0.5", "1/2"])) == 0.0


def test_no_answer_is_its_own_class():
    answers = ["7", None, None, "7"]
    labels = group_answers(answers)
    assert labels == [0, 1, 1, 0]
    assert answer_entropy(labels) == pytest.approx(1.0)
    assert answer_counts(answers, labels) == {"7": 2, NO_ANSWER: 2}
    # all four unanswered: one class, no uncertainty among classes
    assert answer_entropy(group_answers([None] * 4)) == 0.0


def test_answer_entropy_hand_values():
    assert answer_entropy(["a"] * 8) == 0.0
    assert answer_entropy(["a", "a", "b", "c"]) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        answer_entropy([])


def test_correctness_entropy_and_pass_rate():
    assert pass_rate([True, False, False, False]) == 0.25
    # H(1/4) = 0.25*2 + 0.75*log2(4/3) = 0.811278...
    assert correctness_entropy([True, False, False, False]) == pytest.approx(0.8112781244591328)
    assert correctness_entropy([True, False]) == pytest.approx(1.0)
    assert correctness_entropy([False] * 5) == 0.0
    assert correctness_entropy([True] * 5) == 0.0


def test_matcher_off_the_main_thread_still_compares():
    import threading

    result = {}
    m = AnswerMatcher()
    t = threading.Thread(target=lambda: result.setdefault("v", m.equivalent("0.25", "1/4")))
    t.start()
    t.join()
    assert result["v"] is True


def test_extract_modes_are_checked():
    from eas.answers import check_extract_modes

    assert check_extract_modes(["boxed", "choice"]) == ("boxed", "choice")
    with pytest.raises(ValueError, match=r"extract: unknown mode nope \(use boxed, last-number, choice\)"):
        check_extract_modes(("boxed", "nope"))
    with pytest.raises(ValueError, match=r"unknown mode \(none\)"):
        check_extract_modes(())
    with pytest.raises(ValueError, match="not the string"):
        check_extract_modes("boxed")
