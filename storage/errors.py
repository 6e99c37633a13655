"""Errors raised by the storage library. The CLI turns them into clear messages (exit code 2)."""


class StorageError(Exception):
    """A storage operation failed for a reason the user can act on."""


class WarcFormatError(StorageError):
    """A file is not a WARC, or a record in it cannot be parsed."""


class ArchiveWriteError(StorageError):
    """Writing to the archive (a WARC, the index, the frontier) failed: disk full, file too
    large, I/O error. The crawl must stop cleanly: the request stays queued and nothing in the
    index points at the partial write."""

    def __init__(self, path: object, cause: BaseException) -> None:
        self.path = str(path)
        self.cause = cause
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(f"cannot write {self.path}: {reason}")
