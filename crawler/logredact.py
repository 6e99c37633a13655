"""Secrets out of every log line of a crawl process (Scrapy logs its overridden settings).

Installed as a log-record factory, so it applies whatever handler, logger or formatter Scrapy
or a library sets up: the message is formatted once and redacted (storage/redact.py).
"""

from __future__ import annotations

import logging
from typing import Any

from storage.redact import SECRET_WORDS, redact_text

_installed: list[tuple[str, ...]] = []


def install_log_redaction(words: tuple[str, ...] = SECRET_WORDS) -> None:
    """Redact URL passwords and secret-named values in every log record from now on."""
    if _installed:
        _installed[0] = words
        return
    _installed.append(words)
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:
            return record
        redacted = redact_text(message, _installed[0])
        if redacted != message:
            record.msg, record.args = redacted, ()
        return record

    logging.setLogRecordFactory(factory)
