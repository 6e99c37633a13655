"""Errors raised by the storage library. The CLI turns them into clear messages (exit code 2)."""


class StorageError(Exception):
    """A storage operation failed for a reason the user can act on."""


class WarcFormatError(StorageError):
    """A file is not a WARC, or a record in it cannot be parsed."""
