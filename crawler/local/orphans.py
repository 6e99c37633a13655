"""Children that never outlive the crawl process that started them (``kill -9`` included)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (a ``preexec_fn``).

    Elsewhere it does nothing: children then notice the parent is gone by polling
    ``parent_alive`` (crawler/local/child.py).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def parent_alive(parent_pid: int) -> bool:
    """Is the process that started us still our parent? (False once we were re-parented.)"""
    return os.getppid() == parent_pid
