"""The CLI's exit statuses and its usage error (every command shares them)."""

from __future__ import annotations

EXIT_OK, EXIT_USAGE, EXIT_SKIPPED = 0, 2, 3


class UsageError(Exception):
    """Bad arguments found after parsing; exit status 2."""
