"""What the tests share: JSONL files and run parts, input records, tiny models and backends,
the top-K interval check. Test modules import it as ``from support import ...`` (pytest puts
``tests/`` on ``sys.path``: ``tests/conftest.py`` is not in a package). The single-purpose
tools beside these live in their own modules here: ``support.stub_server`` (a scripted
OpenAI-compatible server), ``support.fault_proxy``, ``support.bos_tokenizer``,
``support.chromium`` and ``support.view_rows`` (synthetic scored rows for the view).
Fixtures are in the ``conftest.py`` files (the llama.cpp servers in ``tests/backends/``)."""

from support.files import count_parts, read_jsonl, write_jsonl
from support.models import backend, make_tiny_llama
from support.records import arithmetic_records, example_records
from support.topk import check_topk_interval, score_on_server_and_exact

__all__ = [
    "arithmetic_records",
    "backend",
    "check_topk_interval",
    "count_parts",
    "example_records",
    "make_tiny_llama",
    "read_jsonl",
    "score_on_server_and_exact",
    "write_jsonl",
]
