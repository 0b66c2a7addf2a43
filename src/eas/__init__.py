"""eas: the Entropy Area Score of reasoning traces, and data selection with it.

Quick use::

    from eas import EASConfig, Record, load_backend, score_records

    backend = load_backend("embedded")
    rows = list(score_records([Record("q1", "What is 2+3?", "2+3=5. \\\\boxed{5}")], backend))

Files, resumably (any estimator: ``Exact``, ``eas.scoring.estimators.amortised.Amortised``,
``eas.scoring.calibration.AutoAmortised``; locally or with ``RunOptions(ray=RayOptions())``)::

    from eas import BackendSpec, Exact, RunOptions, score_file

    score_file("in.jsonl", "scored.jsonl", BackendSpec("embedded"), Exact(EASConfig()), RunOptions())

``eas.view.render(rows)`` turns scored rows (``EASConfig(trajectory=True)``) with their
``response`` into a self-contained HTML page, token by token.
"""

from eas import view
from eas.backends.load import load_backend
from eas.backends.spec import BackendSpec, LoadedBackend
from eas.config import EASConfig, EngineConfig, SamplingConfig
from eas.records import InputError, Record, RecordError
from eas.sampling.questions import Question
from eas.scoring.batches import RESULT_COLUMNS, ScoreError
from eas.scoring.estimators.base import Estimator
from eas.scoring.estimators.exact import Exact
from eas.scoring.runs import RunOptions, score_file, score_records
from eas.storage.files import read_table, write_results
from eas.storage.inputs import FieldMap, read_records
from eas.storage.parts import RunSummary
from eas.study.study import StudyConfig, run_study

__version__ = "0.1.0"

__all__ = [
    "RESULT_COLUMNS",
    "BackendSpec",
    "EASConfig",
    "EngineConfig",
    "Estimator",
    "Exact",
    "FieldMap",
    "InputError",
    "LoadedBackend",
    "Question",
    "Record",
    "RecordError",
    "RunOptions",
    "RunSummary",
    "SamplingConfig",
    "ScoreError",
    "StudyConfig",
    "__version__",
    "load_backend",
    "read_records",
    "read_table",
    "run_study",
    "score_file",
    "score_records",
    "view",
    "write_results",
]
