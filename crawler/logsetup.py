"""Where a crawl's log goes: everything to a file per crawl, socialark's own lines to the terminal.

Scrapy writes its whole log (settings, middlewares, per-request lines at ``LOG_LEVEL``) to
``LOG_FILE``, which is ``<data-dir>/state/<collection>/logs/<crawl-id>.log`` unless ``-s
LOG_FILE=…`` says otherwise (appended to on ``--resume``). On top of that one console handler
writes to stderr:

- ``text`` (default): what the archivist needs — socialark's own INFO lines (start, progress,
  pauses, WARC files closed, resume), Scrapy's "Received SIGINT, shutting down gracefully" and
  every warning and error, without Scrapy's start-up dumps, its per-request lines or the
  "Disabled <component>" notes of components not in use;
- ``-v``: Scrapy's log as it is written to the file (``-vv``: at DEBUG, file included);
- ``json``: one JSON object per event (the same selection, or everything with ``-v``).

Secrets are redacted in every record before any handler sees it (crawler/logredact.py); JSON
lines, whose structured fields do not pass through a record's message, are redacted again whole.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from storage.redact import SECRET_WORDS, redact_text

LogFormat = Literal["text", "json"]

# Loggers whose INFO lines reach the quiet terminal: socialark's own code.
OWN_LOGGERS = ("socialark", "crawler", "spiders", "storage")

# ``extra=`` keys understood by the console handlers.
CONSOLE = "console"  # False: the record is for the log file only (e.g. the summary, printed apart)
EVENT = "event"  # the JSON ``event`` name (default ``log``)
FIELDS = "fields"  # a dict merged into the JSON object


@dataclass(frozen=True)
class ConsoleOptions:
    """How much of a crawl's log the terminal shows (``-v`` count, ``--log-format``)."""

    verbose: int = 0
    log_format: LogFormat = "text"

    @property
    def json(self) -> bool:
        return self.log_format == "json"


def log_file_path(state_dir: Path, crawl_id: str, role: str = "crawl") -> Path:
    """The log file of one crawl (``crawl``, appended to on resume) or of one worker process."""
    if role == "crawl":
        return state_dir / "logs" / f"{crawl_id}.log"
    return state_dir / "logs" / f"{crawl_id}-worker-{socket.gethostname()}-{os.getpid()}.log"


def apply_log_settings(settings: Any, console: ConsoleOptions, default_path: Path) -> Path:
    """Point Scrapy's log at the crawl's file (unless ``-s LOG_FILE`` did); returns the path.

    ``-vv`` lowers ``LOG_LEVEL`` to DEBUG (unless set with ``-s``); ``--log-format json``
    makes the progress extension log events rather than redraw a terminal line.
    """
    if not settings.get("LOG_FILE") or _priority(settings, "LOG_FILE") < CMDLINE:
        settings.set("LOG_FILE", str(default_path), priority="cmdline")
    path = Path(settings.get("LOG_FILE"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if console.verbose >= 2 and _priority(settings, "LOG_LEVEL") < CMDLINE:
        settings.set("LOG_LEVEL", "DEBUG", priority="cmdline")
    if console.json:
        settings.set("ARCHIVE_PROGRESS", "log", priority="project")  # -s still wins
    return path


CMDLINE = 40  # scrapy.settings.SETTINGS_PRIORITIES["cmdline"]: what ``-s KEY=VALUE`` sets


def _priority(settings: Any, name: str) -> int:
    return int(settings.getpriority(name) or 0)


# --- the console handler ------------------------------------------------------------------


def is_quiet_noise(record: logging.LogRecord) -> bool:
    """Warnings that say nothing to an archivist: components switched off because their option
    was not given (``Disabled …: no byte limit``) and Python warnings (deprecations)."""
    if record.name == "scrapy.middleware" and str(record.msg).startswith("Disabled "):
        return True
    return record.name == "py.warnings"


def is_scrapy_news(record: logging.LogRecord) -> bool:
    """Scrapy's INFO lines an archivist must see: Ctrl-C / SIGTERM was received."""
    return record.name == "scrapy.crawler" and str(record.msg).startswith("Received ")


class QuietFilter(logging.Filter):
    """socialark's own INFO lines, and warnings and errors from anywhere (less the noise)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, CONSOLE, True) is False:
            return False
        if record.levelno >= logging.WARNING:
            return not is_quiet_noise(record)
        if record.levelno < logging.INFO:
            return False
        return record.name.split(".")[0] in OWN_LOGGERS or is_scrapy_news(record)


class ConsoleOnlyFilter(logging.Filter):
    """Drops the records meant for the log file only (``-v``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, CONSOLE, True) is not False


class QuietFormatter(logging.Formatter):
    """``HH:MM:SS message``; ``HH:MM:SS WARNING: message`` for warnings and errors.

    A warning's exception is one line; an error keeps its traceback (it is worth reporting).
    """

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname}: "
        line = f"{self.formatTime(record, self.datefmt)} {level}{record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if record.levelno >= logging.ERROR:
                return line + "\n" + self.formatException(record.exc_info)
            return f"{line} ({type(exc).__name__}: {exc})"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, event, message, fields, exception."""

    def __init__(self, words: tuple[str, ...] = SECRET_WORDS) -> None:
        super().__init__()
        self.words = words

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, EVENT, "log"),
            "message": record.getMessage(),
        }
        obj.update(getattr(record, FIELDS, None) or {})
        if record.exc_info and record.exc_info[1] is not None:
            obj["exception"] = self.formatException(record.exc_info)
        return redact_text(json.dumps(obj, default=str, ensure_ascii=False), self.words)


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr; on a terminal, clears the live progress line before writing a line over it."""

    def __init__(self, clear_line: bool = True) -> None:
        super().__init__(sys.stderr)
        self._tty = clear_line and _isatty(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        if self._tty:
            try:
                self.stream.write("\r\x1b[K")
            except (OSError, ValueError):
                pass
        super().emit(record)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def console_handler(console: ConsoleOptions, settings: Any, words: tuple[str, ...]) -> logging.Handler:
    """The stderr handler for ``console`` (Scrapy's format and level with ``-v``)."""
    handler = ConsoleHandler(clear_line=not console.json)  # JSON lines stay pure JSON
    verbose = console.verbose > 0
    if console.json:
        handler.setFormatter(JsonFormatter(words))
    elif verbose:
        handler.setFormatter(logging.Formatter(settings.get("LOG_FORMAT"),
                                               settings.get("LOG_DATEFORMAT")))
    else:
        handler.setFormatter(QuietFormatter())
    if verbose:
        handler.setLevel(settings.get("LOG_LEVEL"))
        handler.addFilter(ConsoleOnlyFilter())
        if settings.getbool("LOG_SHORT_NAMES") and not console.json:
            from scrapy.utils.log import TopLevelFormatter

            handler.addFilter(TopLevelFormatter(["scrapy"]))
    else:
        handler.setLevel(logging.INFO)
        handler.addFilter(QuietFilter())
    return handler


_installed: list[logging.Handler] = []


def install_console(console: ConsoleOptions, settings: Any, words: tuple[str, ...]) -> None:
    """Replace the console handler of this process (one crawl per process, but tests reuse)."""
    for old in _installed:
        logging.root.removeHandler(old)
    _installed.clear()
    handler = console_handler(console, settings, words)
    logging.root.addHandler(handler)
    _installed.append(handler)


def console_line(message: str, *, level: str = "error", event: str = "log",
                 logger: str = "socialark") -> str:
    """``message`` as the terminal expects it, for code that must write to stderr directly
    (the stop watchdog, which must not wait on a logging lock): one JSON object when the
    console is ``--log-format json``, else the text."""
    if not any(isinstance(h.formatter, JsonFormatter) for h in _installed):
        return message
    return json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                       "level": level, "logger": logger, "event": event, "message": message})


def file_only(**fields: Any) -> dict[str, Any]:
    """``extra=`` for a record that goes to the log file only (e.g. the summary, which the
    terminal gets as text or as one JSON event from the CLI)."""
    return {CONSOLE: False, **fields}


__all__ = ["ConsoleOptions", "JsonFormatter", "QuietFilter", "QuietFormatter", "apply_log_settings",
           "console_handler", "console_line", "file_only", "install_console", "log_file_path"]
