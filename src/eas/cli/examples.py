"""Examples shown under ``--help`` of the commands whose modules do not set their own epilog."""

from __future__ import annotations

EXAMPLES = {
    "eas score": """examples:
  eas score traces.jsonl --out scored.jsonl                        # the embedded model
  eas score traces.jsonl --out scored.jsonl --trajectory --keep-input   # for eas view and eas select
  eas score traces.jsonl --out scored.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --device cuda
  eas score traces.jsonl --out scored.jsonl --probe-stride 8       # about 8 times fewer probes, EAS estimated
  eas score traces.jsonl --out scored.jsonl --amortised auto       # exact on a slice, a head predicts the rest
  eas score traces.jsonl --out scored.jsonl --backend openai --base-url http://127.0.0.1:8080/v1
  eas score traces.parquet --out scored.parquet --prompt-field question --response-field solution""",
    "eas calibrate": """examples:
  eas calibrate calibration.jsonl --out head.safetensors
  eas calibrate calibration.jsonl --out head.safetensors --layers 15,30 --model embedded
  eas score pool.jsonl --amortised head.safetensors --out scored.jsonl   # then use it""",
    "eas topk-stats": """examples:
  eas score traces.jsonl --backend openai --trajectory --out served.jsonl
  eas topk-stats served.jsonl""",
    "eas plot": """examples:
  eas plot trajectory scored.jsonl --id q17/0 --out q17.png""",
    "eas experiment": """examples:
  eas experiment selection --builtin --quick --out exp/""",
}
