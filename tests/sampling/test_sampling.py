"""Prompts, question files, and the batched sampler (against transformers' generate)."""

import pytest
from support import write_jsonl

from eas.backends.hf.generate import generate_samples
from eas.config import SamplingConfig
from eas.records import InputError
from eas.sampling.questions import Question, build_prompt, builtin_questions_path, load_fewshot, load_questions


def test_builtin_question_set():
    qs = load_questions(builtin_questions_path())
    open_q = [q for q in qs if not q.choices]
    choice = [q for q in qs if q.choices]
    assert len(open_q) == 60 and len(choice) == 20
    assert all(q.answer for q in qs)
    assert all(len(q.choices) == 4 and q.answer in "ABCD" for q in choice)
    assert len({q.id for q in qs}) == 80
    shots = load_fewshot(None)
    assert sum(1 for s in shots if s.question.choices) == 2 and len(shots) == 4
    assert all("\\boxed{" in s.solution for s in shots)


def test_prompt_has_the_examples_of_the_same_kind(tokenizer):
    shots = load_fewshot(None)
    p = build_prompt(tokenizer, Question("x", "What is 5 + 6?", "11"), shots)
    assert "What is 3 + 4?" in p and "\\boxed{7}" in p and "Which animal" not in p
    assert p.rstrip().endswith("assistant")  # the generation prompt
    mc = build_prompt(tokenizer, Question("y", "Pick one", "B", ("x", "y", "z", "w")), shots)
    assert "Which animal can fly?" in mc and "A) x\nB) y\nC) z\nD) w" in mc and "What is 3 + 4?" not in mc
    assert build_prompt(tokenizer, Question("z", "Q?"), []).count("<|im_start|>user") == 1


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": 1, "text": "q"}], "no text in field 'question'"),
        ([{"id": 1, "question": "q"}, {"id": 1, "question": "r"}], "not unique"),
        ([{"id": 1, "question": "q", "choices": ["a", "b"], "answer": "C"}], "must be a letter"),
        ([{"id": 1, "question": "q", "choices": "ab"}], "must be a list"),
    ],
)
def test_bad_question_files(tmp_path, rows, message):
    with pytest.raises(InputError, match=message):
        load_questions(write_jsonl(tmp_path / "q.jsonl", rows))


def test_greedy_sampling_equals_transformers_generate(tiny_model, tokenizer):
    qs = load_questions(builtin_questions_path())[:3]
    prompts = [build_prompt(tokenizer, q, load_fewshot(None)) for q in qs]
    got = generate_samples(tiny_model, tokenizer, prompts, SamplingConfig(n=2, temperature=0, max_new_tokens=10))
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
        ref = tiny_model.generate(**enc, do_sample=False, max_new_tokens=10, pad_token_id=tokenizer.pad_token_id)
    finally:
        tokenizer.padding_side = side
    ref_text = tokenizer.batch_decode(ref[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert [g[0] for g in got] == [t.strip() for t in ref_text]
    assert all(g[0] == g[1] for g in got)


def test_fixed_seed_gives_identical_samples(tiny_model, tokenizer):
    prompts = [build_prompt(tokenizer, Question(i, f"What is {i} + 1?"), load_fewshot(None)) for i in range(3)]
    config = SamplingConfig(n=3, temperature=1.0, max_new_tokens=8, batch_size=4, seed=5)
    a = generate_samples(tiny_model, tokenizer, prompts, config)
    b = generate_samples(tiny_model, tokenizer, prompts, config)
    c = generate_samples(tiny_model, tokenizer, prompts, SamplingConfig(**{**config.__dict__, "seed": 6}))
    assert a == b
    assert a != c
    assert len(a) == 3 and all(len(s) == 3 for s in a)
    assert len({s for row in a for s in row}) > 3  # sampling, not greedy
