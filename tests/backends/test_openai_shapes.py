"""The answer shapes of llama-server (recorded), vLLM and SGLang (their documented formats):
parsed by token id where given, bad values refused, error bodies and caps read."""

import json
import math
from pathlib import Path

import pytest

from eas.backends.openai.shapes import (
    BadAnswer,
    BadLogprobs,
    echo_logprobs,
    error_message,
    logprobs_cap,
    parse_completion,
    parse_generate,
)

RECORDED = Path(__file__).parent / "recorded"


def _load(name: str):
    return json.loads((RECORDED / name).read_text())


def test_llama_server_content_shape_is_keyed_by_id():
    body = _load("llama_server_v1_completions_ids.json")
    top = parse_completion(body)
    assert top.shape == "content" and top.keyed_by == "id" and len(top.values) == 20
    raw = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert top.values == {e["id"]: e["logprob"] for e in raw}
    assert top.values[2] == pytest.approx(-1.361913800239563)  # <|im_end|>: token "" (text keys would clash)
    assert list(top.values.values()) == sorted(top.values.values(), reverse=True)
    assert 0.5 < sum(math.exp(v) for v in top.values.values()) < 1  # the first answer's top-20 mass
    assert len(parse_completion(_load("llama_server_v1_completions_ids_k50.json")).values) == 50
    with pytest.raises(BadAnswer, match="null"):  # logprobs: 0 -> "logprobs": null
        parse_completion(_load("llama_server_v1_completions_ids_k0.json"))
    assert echo_logprobs(_load("llama_server_v1_completions_echo.json")) is None  # echo ignored


def test_text_keys_merge_where_ids_do_not():
    entries = [{"id": 2, "token": "", "logprob": -1.0}, {"id": 0, "token": "", "logprob": -2.0}]
    body = {"choices": [{"logprobs": {"content": [{"top_logprobs": entries}]}}]}
    assert parse_completion(body).values == {2: -1.0, 0: -2.0}
    for e in entries:
        del e["id"]
    top = parse_completion(body)
    assert top.keyed_by == "text" and top.values == {"": -1.0}  # the first (most likely) is kept


def test_vllm_legacy_shapes_text_and_token_id_keys():
    top = parse_completion(_load("vllm_completions.json"))
    assert top.shape == "legacy" and top.keyed_by == "text"
    assert top.values == {" the": -0.4127, " a": -1.9031, " an": -3.0518}
    top = parse_completion(_load("vllm_completions_token_ids.json"))
    assert top.keyed_by == "id" and top.values == {260: -0.4127, 253: -1.9031, 354: -3.0518}
    chat = parse_completion(_load("vllm_chat.json"))
    assert chat.shape == "content" and chat.keyed_by == "text" and chat.values["4"] == -0.0213
    floor = {"choices": [{"logprobs": {"top_logprobs": [{"a": -0.1, "b": -9999.0}]}}]}
    assert parse_completion(floor).values["b"] == -9999.0  # vLLM's floor: a probability of 0, kept


def test_sglang_generate_triples_and_adapter():
    top = parse_generate(_load("sglang_generate.json"))
    assert top.shape == "sglang" and top.keyed_by == "id" and top.values == {260: -0.4127, 253: -1.9031, 354: -3.0518}
    no_text = {"meta_info": {"output_top_logprobs": [[[-0.5, 7, None], [-1.5, 9, None]]]}}
    assert parse_generate(no_text).values == {7: -0.5, 9: -1.5}  # return_text_in_logprobs false
    assert parse_completion(_load("sglang_completions.json")).keyed_by == "text"
    with pytest.raises(BadAnswer, match="output_top_logprobs"):
        parse_generate({"meta_info": {}})


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), 0.5])
def test_null_nan_and_positive_logprobs_are_refused(value):
    legacy = {"choices": [{"logprobs": {"top_logprobs": [{"a": value, "b": -1.0}]}}]}
    content = {"choices": [{"logprobs": {"content": [{"top_logprobs": [{"id": 1, "token": "a", "logprob": value}]}]}}]}
    sglang = {"meta_info": {"output_top_logprobs": [[[value, 1, "a"]]]}}
    for parse, body in ((parse_completion, legacy), (parse_completion, content), (parse_generate, sglang)):
        with pytest.raises(BadLogprobs):
            parse(body)
    with pytest.raises(BadAnswer, match="not a number"):
        parse_completion({"choices": [{"logprobs": {"top_logprobs": [{"a": "x"}]}}]})
    # -inf is a probability of 0, not an error (Python servers write it as -Infinity)
    assert parse_completion(json.loads('{"choices": [{"logprobs": {"top_logprobs": [{"a": -Infinity}]}}]}'))


def test_error_bodies_and_the_vllm_cap():
    vllm = _load("vllm_error_max_logprobs.json")
    message = error_message(json.dumps(vllm))
    assert message.startswith("Requested sample logprobs of 21, which is greater than max allowed: 20")
    assert logprobs_cap(message) == 20
    assert logprobs_cap("Field 'n': Value must be between 1 <= value <= 1") is None  # not about logprobs
    assert logprobs_cap("top_logprobs must be <= 5") == 5
    llama = error_message(json.dumps(_load("llama_server_v1_completions_too_long.json")))
    assert llama.startswith("request (2100 tokens) exceeds the available context size (2048 tokens)")
    assert (
        error_message(json.dumps(_load("llama_server_v1_completions_bad_id.json"))) == "Prompt contains invalid tokens"
    )
    flat, native = (e["body"] for e in _load("sglang_error.json")["_examples"])
    assert error_message(json.dumps(flat)) == "max_tokens must be positive"
    assert error_message(json.dumps(native)) == "<str(exception)>"
    assert error_message("<html>bad gateway</html>") == "<html>bad gateway</html>"
    assert error_message('{"detail": "Not Found"}') == "Not Found"
