"""The end-of-crawl summary (pages by status, bytes, files, errors, where things are)."""

from __future__ import annotations

from typing import Any

import click

from crawler.extensions.progress import human_bytes

REASONS = {
    "finished": "finished",
    "closespider_pagecount": "stopped at --max-pages",
    "closespider_timeout": "stopped at --max-time",
    "archive_max_bytes": "stopped at --max-bytes",
    "shutdown": "interrupted (resumable with --resume)",
    "cancelled": "interrupted (resumable with --resume)",
    "archive_write_failed": "stopped: the archive could not be written (free space, then --resume)",
}


# The outcomes of spiders/_outcomes.py, the same lines for every platform.
OUTCOME_LINES = (
    ("missing", "gone from the platform (archived as evidence)"),
    ("blocked", "withheld by the platform (archived as evidence)"),
    ("failed", "not captured"),
)


def outcome_lines(stats: dict[str, Any]) -> list[str]:
    """``missing``/``blocked``/``failed`` counts by reason, then the named targets concerned."""
    lines = []
    for outcome, title in OUTCOME_LINES:
        prefix = f"archive/{outcome}/"
        counts = {k[len(prefix):]: v for k, v in stats.items() if k.startswith(prefix)}
        if counts:
            lines.append(f"  {title}: {sum(counts.values())} ("
                         + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ")")
    lines += [f"  target {line}" for line in stats.get("archive/targets") or []]
    return lines


def quality_lines(stats: dict[str, Any]) -> list[str]:
    """What the capture-quality gate left blocked, the targets, and what to do about it."""
    from crawler.quality import KINDS, MESSAGES

    prefix = "quality/blocked/"
    counts = {k[len(prefix):]: v for k, v in stats.items() if k.startswith(prefix)}
    if not counts:
        return []
    lines = [f"  blocked by the capture-quality gate (not captured): {sum(counts.values())} ("
             + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(counts.items())) + ")"]
    lines += [f"  blocked {line}" for line in stats.get("quality/targets") or []]
    lines += [MESSAGES[kind] for kind in KINDS if kind in counts]
    return lines


def response_counts(stats: dict[str, Any]) -> tuple[int, list[tuple[int, int]], int]:
    """(responses, [(status, count)…], handled): counted the same way, so they add up.

    Every response off the wire is counted once by status (``downloader/response_status_count``)
    and archived. Redirects followed and responses retried (429, 5xx, a quality-gate pause)
    never reach a spider callback, so Scrapy's ``response_received_count`` (the progress line's
    "pages") is smaller: the summary used to print it as the total next to the wire counts.
    """
    statuses = sorted(
        (int(k.rsplit("/", 1)[1]), int(v)) for k, v in stats.items()
        if k.startswith("downloader/response_status_count/")
    )
    total = sum(n for _, n in statuses)
    handled = min(int(stats.get("response_received_count", 0)), total)
    return total, statuses, handled


def responses_line(stats: dict[str, Any]) -> str:
    """``responses: 119 (200: 107, 301: 1, 500: 8); 109 handled, 10 redirected or retried``."""
    total, statuses, handled = response_counts(stats)
    line = f"  responses: {total}"
    if statuses:
        line += " (" + ", ".join(f"{code}: {n}" for code, n in statuses) + ")"
    if total - handled:
        line += f"; {handled} handled, {total - handled} redirected or retried"
    return line


def summary_lines(result: Any, options: Any) -> list[str]:
    """The summary as text lines (the first says how the crawl ended)."""
    s: dict[str, Any] = result.stats
    lines = [f"Crawl {REASONS.get(result.reason, result.reason)} (exit {int(result.exit_code)})",
             responses_line(s)]
    records, revisits = s.get("warc/records_written", 0), s.get("warc/revisits", 0)
    lines.append(f"  WARC records: {records} (of which revisits: {revisits})  "
                 f"written: {human_bytes(s.get('warc/bytes_written', 0))}  "
                 f"files closed: {s.get('warc/files_closed', 0)}")
    if s.get("warc/files_repaired"):
        lines.append(f"  repaired WARCs left open by a crash: {s['warc/files_repaired']}")
    if any(k.startswith("ids/") for k in s):
        other = sum(v for k, v in s.items() if k.startswith("ids/other/"))
        lines.append(f"  ids: {s.get('ids/hit', 0)} hits, {s.get('ids/miss', 0)} misses "
                     f"(404/410), {other} other statuses")
    if s.get("scope/trap_bounded"):
        lines.append(f"  link-trap URLs not followed: {s['scope/trap_bounded']}")
    lines += outcome_lines(s)
    lines += quality_lines(s)
    if s.get("mirror/uploaded") or s.get("mirror/failed"):
        lines.append(f"  mirrored and verified: {s.get('mirror/uploaded', 0)} files "
                     f"({human_bytes(s.get('mirror/bytes', 0))}); failed: "
                     f"{s.get('mirror/failed', 0)}"
                     + (" — run `socialark mirror` to finish" if s.get("mirror/failed") else ""))
    data_dir = options.data_dir
    lines.append(f"  WARCs: {data_dir / 'warcs' / options.collection}")
    lines.append(f"  index: {data_dir / 'index.db'}")
    if getattr(result, "log_file", None):
        lines.append(f"  log: {result.log_file}")
    return lines


def summary_event(result: Any, options: Any, lines: list[str]) -> dict[str, Any]:
    """The summary as one JSON event (``--log-format json``): the text lines and the counts."""
    from datetime import UTC, datetime

    total, statuses, handled = response_counts(result.stats)
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "info", "logger": "socialark.summary", "event": "summary",
        "message": lines[0], "lines": lines, "reason": result.reason,
        "exit_code": int(result.exit_code),
        "responses": {"total": total, "by_status": {str(c): n for c, n in statuses},
                      "handled": handled, "redirected_or_retried": total - handled},
        "warcs": str(options.data_dir / "warcs" / options.collection),
        "index": str(options.data_dir / "index.db"),
        "log_file": str(result.log_file) if getattr(result, "log_file", None) else None,
        "stats": result.stats,
    }


def print_summary(result: Any, options: Any, console: Any = None) -> None:
    """The summary on stderr (text, or one JSON event), and into the crawl's log file."""
    import json
    import logging

    from crawler.logsetup import file_only

    lines = summary_lines(result, options)
    logger = logging.getLogger("socialark.summary")
    for line in lines:
        logger.info(line, extra=file_only())
    if console is not None and console.json:
        from storage.redact import redact_text

        click.echo(redact_text(json.dumps(summary_event(result, options, lines), default=str)),
                   err=True)
        return
    click.echo("", err=True)
    for line in lines:
        click.echo(line, err=True)
