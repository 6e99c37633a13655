"""The one rule for collection names (they become directory names, S3 keys and WARC paths).

``[A-Za-z0-9][A-Za-z0-9._-]*``, at most 100 characters, no ``..``: never a path, never
absolute, never hidden, so ``warcs/<collection>/`` and ``<prefix>/<collection>/`` stay inside
the archive and the bucket prefix whatever a user, a Redis entry or a config file says.
"""

from __future__ import annotations

import re

from storage.errors import StorageError

COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
COLLECTION_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, no '..'"


class CollectionNameError(StorageError):
    """A collection name outside the rule."""


def check_collection(name: object) -> str:
    """``name`` if it follows the collection rule, else ``CollectionNameError``."""
    if not isinstance(name, str) or not COLLECTION_RE.match(name) or ".." in name:
        raise CollectionNameError(f"invalid collection name {name!r}: {COLLECTION_RULE}")
    return name
