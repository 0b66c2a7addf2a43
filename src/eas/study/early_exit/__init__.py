"""``eas early-exit``: stop rules on the online EAS curve against the full generation (docs/online.md).

``run_early_exit`` samples and replays (``run``), ``summary_rows`` makes the table
(``summary``), ``write_report`` the CSV, the Pareto figure and the reports (``report``).
"""

from eas.study.early_exit.config import EarlyExitConfig
from eas.study.early_exit.report import markdown_table, write_report
from eas.study.early_exit.run import RUNS, run_early_exit
from eas.study.early_exit.summary import pareto_front, summary_rows

__all__ = [
    "RUNS",
    "EarlyExitConfig",
    "markdown_table",
    "pareto_front",
    "run_early_exit",
    "summary_rows",
    "write_report",
]
