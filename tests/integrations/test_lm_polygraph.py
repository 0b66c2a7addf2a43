"""eas in LM-Polygraph: the stat calculator and estimators, run through its UEManager.

The EAS values are checked against a plain transformers loop: one forward pass per
probe over the prompt ids, the generated ids up to x_t and the trigger, entropy of the
last logits in bits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("lm_polygraph")

from eas.config import EASConfig
from eas.integrations import lm_polygraph as eas_pg
from eas.records import Record
from eas.scoring.probes import encode_record

TEXTS = ["What is 2 + 2?", "Name a colour.", "Count to three."]


def _naive_eas(model, prompt_ids: list[int], response_ids: list[int], suffix_ids: list[int]) -> list[float]:
    import torch

    out = []
    with torch.no_grad():
        for t in range(1, len(response_ids)):
            ids = torch.tensor([prompt_ids + response_ids[:t] + suffix_ids])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].double(), dim=-1)
            out.append(float(-(logp.exp() * logp).sum() / math.log(2)))
    return out


@pytest.fixture(scope="module")
def polygraph_run(tokenizer):
    from lm_polygraph.defaults.register_default_stat_calculators import register_default_stat_calculators
    from lm_polygraph.estimators import MaximumSequenceProbability
    from lm_polygraph.utils.builder_enviroment_stat_calculator import BuilderEnvironmentStatCalculator
    from lm_polygraph.utils.dataset import Dataset
    from lm_polygraph.utils.manager import UEManager
    from lm_polygraph.utils.model import WhiteboxModel

    from eas.testing.models import make_tiny_llama

    model = make_tiny_llama(len(tokenizer), seed=1)
    wm = WhiteboxModel(model, tokenizer, "tiny-llama")
    data = Dataset(TEXTS, ["4", "red", "1 2 3"], batch_size=2)  # two batches: 2 + 1
    calculators = register_default_stat_calculators("Whitebox", output_attentions=False, output_hidden_states=False)
    calculators.append(eas_pg.stat_calculator_container({"end": "response"}))
    estimators = [eas_pg.load_estimator({"kind": "eas"}), eas_pg.load_estimator({"kind": "mean_eas"})]
    estimators.append(MaximumSequenceProbability())
    env = BuilderEnvironmentStatCalculator(wm)
    manager = UEManager(
        data, wm, estimators, env, calculators, [], [], [], ignore_exceptions=False, verbose=False, max_new_tokens=8
    )
    manager()
    return model, manager


def test_ue_manager_runs_eas_and_mean_eas_equal_to_a_naive_loop(polygraph_run, tokenizer):
    model, manager = polygraph_run
    eas = manager.estimations[("sequence", "EAS")]
    mean = manager.estimations[("sequence", "MeanEAS")]
    assert len(eas) == len(mean) == len(TEXTS)
    assert len(manager.estimations[("sequence", "MaximumSequenceProbability")]) == len(TEXTS)
    suffix = tokenizer(EASConfig.trigger, add_special_tokens=False)["input_ids"]
    for i, text in enumerate(TEXTS):
        generated = [int(x) for x in manager.stats["greedy_tokens"][i]]
        if generated and generated[-1] == tokenizer.eos_token_id:
            generated = generated[:-1]
        assert len(generated) >= 3
        prompt = tokenizer(text, add_special_tokens=True)["input_ids"]  # WhiteboxModel.tokenize, unpadded
        h = _naive_eas(model, prompt, generated, suffix)
        assert eas[i] == pytest.approx(sum(h), rel=1e-4)
        assert mean[i] == pytest.approx(sum(h) / len(h), rel=1e-4)
    assert len(set(np.round(eas, 3))) == len(TEXTS)  # different texts, different areas


def test_answer_end_locates_x_t_as_eas_score_does(tokenizer):
    calc = eas_pg.load_stat_calculator({"end": "answer"})
    for response in (r"So 2 + 2 = \boxed{4}. Done.", r"thus \boxed{\frac{1}{2}} and more", r"\boxed{123456}"):
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        expected = encode_record(tokenizer, Record("r", "q", response), EASConfig()).answer_end
        assert calc._answer_end(tokenizer, ids) == expected
    assert calc._answer_end(tokenizer, tokenizer("no box here", add_special_tokens=False)["input_ids"]) is None


def test_estimators_read_the_trajectory_and_mark_missing_ones():
    stats = {eas_pg.STAT: [np.array([1.0, 0.5, 0.25]), np.array([]), np.array([np.nan])]}
    eas = eas_pg.EAS()(stats)
    mean = eas_pg.MeanEAS()(stats)
    assert eas[0] == 1.75 and eas[1] == 0.0 and np.isnan(eas[2])
    assert mean[0] == pytest.approx(1.75 / 3) and np.isnan(mean[1]) and np.isnan(mean[2])
    assert str(eas_pg.load_estimator({})) == "EAS" and eas_pg.load_estimator({"kind": "eas"}).level == "sequence"


def test_bad_settings_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="kind must be one of eas, mean_eas"):
        eas_pg.load_estimator({"kind": "area"})
    with pytest.raises(ValueError, match="end must be one of response, answer"):
        eas_pg.load_stat_calculator({"end": "boxed"})


def test_polygraph_factories_load_both_by_module_path():
    from lm_polygraph.utils.factory_estimator import FactoryEstimator
    from lm_polygraph.utils.factory_stat_calculator import create_stat_calculator

    assert str(FactoryEstimator()("eas.integrations.lm_polygraph", {"kind": "mean_eas"})) == "MeanEAS"
    calc = create_stat_calculator("eas.integrations.lm_polygraph", {"trigger": "The answer is "}, None)
    assert isinstance(calc, eas_pg.EASTrajectoryCalculator) and calc.trigger == "The answer is "
    assert calc.stats == [eas_pg.STAT] and calc.stat_dependencies == ["greedy_tokens"]
