"""One prompt-ids function for every command: no double BOS (eas.backends.prompts)."""

from __future__ import annotations

import pytest
from support import backend as hf_backend
from support import make_tiny_llama
from support.bos_tokenizer import make_bos_tokenizer

from eas.backends.prompts import leading_special_ids, prompt_ids, text_prompt_ids
from eas.config import EASConfig, SamplingConfig
from eas.records import Record
from eas.sampling.questions import Question

PROMPT = "What is 2 + 2?"
RESPONSE = "Two and two make four. So \\boxed{4}."


@pytest.fixture(scope="module")
def bos_tok():
    return make_bos_tokenizer()


def _chat_ids(tok) -> list[int]:
    ids = tok.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_the_tokenizer_really_doubles_the_bos_when_let(bos_tok):
    """The defect, shown on the tokenizer itself: render + add_special_tokens=True gives two BOS."""
    bos = bos_tok.bos_token_id
    text = bos_tok.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
    )
    assert bos_tok(text)["input_ids"][:2] == [bos, bos]
    assert _chat_ids(bos_tok).count(bos) == 1
    assert not getattr(bos_tok, "add_bos_token", False)  # like Gemma: the attribute does not say it adds one


def test_leading_special_ids_are_found_by_tokenizing(bos_tok, tokenizer):
    assert leading_special_ids(bos_tok) == [bos_tok.bos_token_id]
    assert leading_special_ids(tokenizer) == []  # SmolLM2 adds nothing


def test_prompt_ids_have_one_bos_with_and_without_a_template(bos_tok, tokenizer):
    bos = bos_tok.bos_token_id
    assert prompt_ids(bos_tok, PROMPT) == _chat_ids(bos_tok)
    raw = prompt_ids(bos_tok, PROMPT, use_chat_template=False)
    assert raw == bos_tok(PROMPT)["input_ids"] and raw.count(bos) == 1
    rendered = bos_tok.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
    )
    assert text_prompt_ids(bos_tok, rendered) == _chat_ids(bos_tok)
    assert prompt_ids(tokenizer, PROMPT) == _chat_ids(tokenizer)  # SmolLM2: as before


def test_the_same_record_gives_the_same_ids_in_all_five_commands(bos_tok):
    """score, sample, study, train and evaluate feed the model the same prompt ids."""
    from eas.sampling.sample import grade_samples, sample_questions
    from eas.scoring.runs import score_records
    from eas.selection.evaluation import evaluate
    from eas.selection.training import tokenized_examples
    from eas.study.study import StudyConfig, score_samples

    model = make_tiny_llama(len(bos_tok), seed=1)
    backend = hf_backend(model, bos_tok)
    measured: list[list[int]] = []
    inner = backend.measure

    def recording_measure(batch):
        measured.extend(list(e.prompt_ids) for e in batch)
        return inner(batch)

    backend.measure = recording_measure
    prefills: list[list[int]] = []

    def first_forward(module, args, kwargs):
        ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
        if mask is not None and mask.shape == ids.shape and ids.shape[1] > 1:  # the sampler's prefill
            prefills.extend(row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True))

    model.register_forward_pre_hook(first_forward, with_kwargs=True)
    sampling = SamplingConfig(n=1, temperature=1.0, max_new_tokens=3)
    question = Question("q", PROMPT, "4")

    list(score_records([Record("r", PROMPT, RESPONSE)], backend, EASConfig()))  # eas score
    score_ids = measured[-1]
    rows = sample_questions([question], backend, sampling)  # eas sample
    sample_ids = prefills[-1]
    graded = grade_samples([question], [{**rows[0], "response": RESPONSE}])
    score_samples(graded, backend, StudyConfig(sampling=sampling))  # eas study scores the sampled prompt
    study_ids = measured[-1]
    example = tokenized_examples([Record("r", PROMPT, RESPONSE)], bos_tok)[0]  # eas train
    train_ids = example["input_ids"][: example["completion_mask"].index(1)]
    evaluate(backend, [question], k=1, sampling=sampling)  # eas evaluate
    eval_ids = prefills[-1]

    expected = _chat_ids(bos_tok)
    assert expected.count(bos_tok.bos_token_id) == 1
    assert score_ids == sample_ids == study_ids == train_ids == eval_ids == expected
    assert bos_tok.decode(example["input_ids"][len(expected) :]).startswith("Two and two")
