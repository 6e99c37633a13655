"""One stderr line when a command's output refers to WARC files that are not on this machine.

``cdx``, ``export cdxj|posts|captures`` still answer from the index for files offloaded to a
bucket (``mirror --delete-after-verify``) or indexed from one; reading those captures (replay,
a WACZ) needs the remote copy, and the user should know which and where before trying.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from storage.offload import AbsentWarc, absent_files, locations


def note_absent(db: Any, what: str, *, collection: str | None = None,
                names: Iterable[str] | None = None, captures: int | None = None) -> list[AbsentWarc]:
    """Say how many files (and captures, if counted) of ``what`` need the remote copy, and where."""
    files = absent_files(db, collection, names)
    if files:
        counted = f"{captures} capture(s) in " if captures is not None else ""
        click.echo(f"note: {counted}{len(files)} WARC file(s) of {what} are not on this machine "
                   f"({locations(files)}): reading them needs the remote copy", err=True)
    return files
