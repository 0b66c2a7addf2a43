"""Run lm-evaluation-harness and lighteval on a small local task; keep their per-sample files.

The files under ``tests/integrations/data/`` were made with this script; the tests read
them (``eas score FILE --from lm-eval`` / ``--from lighteval``), and one test runs the
lm-eval half again on a tiny model.

The task: the first N questions of eas's built-in question set (``src/eas/data``), two
solved examples as few-shot chat turns, greedy answers of at most 48 tokens, graded by
the boxed answer (lm-eval: ``exact_match`` from the task's own ``process_results``;
lighteval: its ``expr_gold_metric``, reported as ``extractive_match``). The data set is
local JSON (``dataset_path: json`` + ``data_files``), so nothing is downloaded.

Usage (from the repository root; the model defaults to the embedded SmolLM2-135M)::

    python scripts/make_eval_fixtures.py --lm-eval --out tests/integrations/data
    # lighteval cannot share a venv with lm-polygraph (antlr4 pins): give it its own
    python scripts/make_eval_fixtures.py --lighteval-python /path/to/venv/bin/python \\
        --out tests/integrations/data

lighteval 0.13 imports every built-in task at start and one of them downloads a file;
offline, the runner skips the built-in tasks (only the custom one is needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

TASK = "eas_arith"
MAX_TOKENS = 48

LM_EVAL_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    train: {data}/train.jsonl
    test: {data}/test.jsonl
training_split: train
test_split: test
fewshot_split: train
num_fewshot: 2
fewshot_config:
  sampler: first_n
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{solution}}}}"
target_delimiter: " "
generation_kwargs:
  until: ["\\n\\n"]
  max_gen_toks: {max_tokens}
  do_sample: false
process_results: !function grading.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

GRADING = '''\
import re


def process_results(doc, results):
    """1.0 when the last boxed answer of the response is the document's answer."""
    found = re.findall(r"\\\\boxed\\{([^{}]*)\\}", results[0])
    return {"exact_match": float(bool(found) and found[-1].strip() == doc["answer"])}
'''

LIGHTEVAL_TASK = """\
from lighteval.metrics.metrics import Metrics
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc


def prompt(line, task_name=None):
    return Doc(task_name=task_name, query=line["question"], choices=[line["solution"] or line["answer"]], gold_index=0)


TASKS_TABLE = [
    LightevalTaskConfig(
        name="{task}",
        prompt_function=prompt,
        hf_repo="{data}",
        hf_subset="default",
        hf_avail_splits=["train", "test"],
        evaluation_splits=["test"],
        few_shots_split="train",
        few_shots_select="sequential",
        generation_size={max_tokens},
        stop_sequence=["\\n\\n"],
        metrics=[Metrics.expr_gold_metric],
        version=0,
    )
]
"""

LIGHTEVAL_RUNNER = """\
import sys
from lighteval.tasks.registry import Registry

Registry._load_from_files = staticmethod(lambda files, module: {{}})
Registry._load_from_subdirs = staticmethod(lambda dirs: {{}})
from lighteval.main_accelerate import accelerate

accelerate(
    model_args="model_name={model},dtype=float32,batch_size={batch}",
    tasks="{task}|2",
    custom_tasks="{task_file}",
    max_samples={limit},
    save_details=True,
    output_dir="{out}",
)
"""


def write_task(work: Path, limit: int) -> Path:
    """The local data set (train: two solved examples; test: ``limit`` questions) and the task files."""
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    pkg = resources.files("eas") / "data"
    questions = [json.loads(line) for line in (pkg / "questions.jsonl").read_text().splitlines() if line.strip()]
    fewshot = [json.loads(line) for line in (pkg / "fewshot.jsonl").read_text().splitlines() if line.strip()]
    with (data / "test.jsonl").open("w") as f:
        for q in [q for q in questions if "choices" not in q][:limit]:
            f.write(
                json.dumps({"id": q["id"], "question": q["question"], "answer": q["answer"], "solution": ""}) + "\n"
            )
    with (data / "train.jsonl").open("w") as f:
        for q in fewshot[:2]:
            f.write(json.dumps({"id": "fewshot", "question": q["question"], "answer": "", "solution": q["solution"]}))
            f.write("\n")
    fmt = {"task": TASK, "data": data, "max_tokens": MAX_TOKENS}
    (work / f"{TASK}.yaml").write_text(LM_EVAL_YAML.format(**fmt))
    (work / "grading.py").write_text(GRADING)
    (work / "lighteval_task.py").write_text(LIGHTEVAL_TASK.format(**fmt))
    return data


def run_lm_eval(work: Path, model: str, limit: int, out: Path) -> Path:
    """``lm_eval --log_samples`` with the chat template and few-shot turns; the samples file."""
    results = work / "lm_eval_out"
    cmd = [
        *lm_eval_command(),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model},dtype=float32",
        "--tasks",
        TASK,
        "--include_path",
        str(work),
        "--limit",
        str(limit),
        "--log_samples",
        "--apply_chat_template",
        "--fewshot_as_multiturn",
        "--device",
        "cpu",
        "--batch_size",
        str(limit),
        "--output_path",
        str(results),
    ]
    subprocess.run(cmd, check=True, env=_offline_env())
    (samples,) = results.rglob(f"samples_{TASK}_*.jsonl")
    target = out / "lm_eval_samples.jsonl"
    shutil.copyfile(samples, target)
    return target


def lm_eval_command() -> list[str]:
    exe = Path(sys.executable).with_name("lm_eval")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "lm_eval"]


def run_lighteval(work: Path, python: str, model: str, limit: int, out: Path) -> Path:
    """lighteval (in the venv of ``python``) with ``--save-details``; the details file."""
    results = work / "lighteval_out"
    runner = work / "run_lighteval.py"
    runner.write_text(
        LIGHTEVAL_RUNNER.format(
            model=model, batch=limit, task=TASK, task_file=work / "lighteval_task.py", limit=limit, out=results
        )
    )
    subprocess.run([python, str(runner)], check=True, env=_offline_env())
    (details,) = results.rglob(f"details_{TASK}*.parquet")
    target = out / "lighteval_details.parquet"
    shutil.copyfile(details, target)
    return target


def _offline_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="tests/integrations/data", help="where the files go")
    p.add_argument("--model", default=None, help="model folder (default: the embedded model's)")
    p.add_argument("--limit", type=int, default=12, help="documents (default 12)")
    p.add_argument("--lm-eval", action="store_true", help="run lm_eval (installed beside this Python)")
    p.add_argument("--lighteval-python", default=None, help="a Python with lighteval installed")
    args = p.parse_args(argv)
    if args.model is None:
        from eas.backends.sources.embedded import embedded_model_dir

        args.model = str(embedded_model_dir())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_task(work, args.limit)
        if args.lm_eval:
            print(run_lm_eval(work, args.model, args.limit, out))
        if args.lighteval_python:
            print(run_lighteval(work, args.lighteval_python, args.model, args.limit, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
