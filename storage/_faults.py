"""Crash points for the kill -9 tests: ``SOCIALARK_CRASH_AT=<point>[:<n>]`` kills the process
with SIGKILL the n-th time (default 1st) it passes ``point``.

A real ``kill -9`` at a chosen moment (between a WARC's rename and its index update, in the
middle of an index transaction, between the WARC fsync and the frontier commit) instead of
hoping a timer lands there. Unset (the normal case) it costs one comparison per call.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("SOCIALARK_CRASH_AT", "")
_POINT, _, _N = _SPEC.partition(":")
_left = int(_N) if _N.isdigit() else 1

POINTS = ("warc_renamed", "index_flush", "frontier_commit", "manifest_written")


def crash_point(name: str) -> None:
    global _left
    if not _POINT or name != _POINT:
        return
    _left -= 1
    if _left <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
