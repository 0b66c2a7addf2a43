"""The token-level view: one self-contained HTML page of scored traces, token by token.

``page`` lays out the page (header, list, sections, legend; CSS and script inlined from
``view.css`` and ``view.js``); ``trace`` turns one scored row into what the page draws.
"""

from eas.view.page import read_study, render, study_page, study_rows
from eas.view.trace import ViewError, trace_anchor

__all__ = ["ViewError", "read_study", "render", "study_page", "study_rows", "trace_anchor"]
