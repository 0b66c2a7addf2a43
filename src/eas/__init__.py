"""eas: the Entropy Area Score of reasoning traces, and data selection with it.

Quick use::

    from eas import EASConfig, Record, load_backend, score_records

    backend = load_backend("embedded")
    rows = list(score_records([Record("q1", "What is 2+3?", "2+3=5. \\\\boxed{5}")], backend))
"""

from eas.config import EASConfig, EngineConfig
from eas.io import FieldMap, read_records, read_table, write_results
from eas.records import InputError, Record, RecordError
from eas.runs import RunSummary, score_file
from eas.sampling import Question, SamplingConfig
from eas.scoring import RESULT_COLUMNS, ScoreError, load_backend, score_records
from eas.study import StudyConfig, run_study

__version__ = "0.1.0"

__all__ = [
    "RESULT_COLUMNS",
    "EASConfig",
    "EngineConfig",
    "FieldMap",
    "InputError",
    "Question",
    "Record",
    "RecordError",
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
    "write_results",
]
