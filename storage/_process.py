"""Is a process still running? (spool and ``.open`` WARC leftovers belong to live or dead pids)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True when ``pid`` runs on this host (ours included, or another user's we cannot signal)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
