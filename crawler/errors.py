"""Exit codes and crawl-level errors, shared by the Scrapy glue and the command line.

The exit codes are a public contract (DESIGN.md). They live here, not in ``crawler/cli/``, so
``crawler/run.py``, the worker and the stop extension need not import click; the CLI turns a
``CrawlConfigError`` into a one-line message and exit code 2.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of every ``socialark`` command (a public contract, see DESIGN.md)."""

    OK = 0
    FINISHED_WITH_ERRORS = 1
    USAGE = 2
    INTERRUPTED = 3


class CrawlError(Exception):
    """A crawl could not start or go on; ``exit_code`` is what the process should exit with."""

    exit_code: ExitCode = ExitCode.FINISHED_WITH_ERRORS


class CrawlConfigError(CrawlError):
    """The crawl's options or environment are unusable (bad data dir, nothing to resume, a bad
    ``-s KEY=VALUE``, a Redis registry that refuses the crawl): a usage error, exit 2."""

    exit_code = ExitCode.USAGE


__all__ = ["CrawlConfigError", "CrawlError", "ExitCode"]
