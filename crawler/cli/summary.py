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


def print_summary(result: Any, options: Any) -> None:
    s: dict[str, Any] = result.stats
    statuses = sorted(
        (int(k.rsplit("/", 1)[1]), v) for k, v in s.items()
        if k.startswith("downloader/response_status_count/")
    )
    echo = click.echo
    echo("", err=True)
    echo(f"Crawl {REASONS.get(result.reason, result.reason)} (exit {int(result.exit_code)})", err=True)
    echo(f"  responses: {s.get('response_received_count', 0)}  "
         + "  ".join(f"{code}: {n}" for code, n in statuses), err=True)
    echo(f"  WARC records: {s.get('warc/records_written', 0)}  "
         f"revisits: {s.get('warc/revisits', 0)}  "
         f"written: {human_bytes(s.get('warc/bytes_written', 0))}  "
         f"files closed: {s.get('warc/files_closed', 0)}", err=True)
    if s.get("warc/files_repaired"):
        echo(f"  repaired WARCs left open by a crash: {s['warc/files_repaired']}", err=True)
    if any(k.startswith("ids/") for k in s):
        other = sum(v for k, v in s.items() if k.startswith("ids/other/"))
        echo(f"  ids: {s.get('ids/hit', 0)} hits, {s.get('ids/miss', 0)} misses (404/410), "
             f"{other} other statuses", err=True)
    if s.get("scope/trap_bounded"):
        echo(f"  link-trap URLs not followed: {s['scope/trap_bounded']}", err=True)
    for line in outcome_lines(s):
        echo(line, err=True)
    for line in quality_lines(s):
        echo(line, err=True)
    if s.get("mirror/uploaded") or s.get("mirror/failed"):
        echo(f"  mirrored and verified: {s.get('mirror/uploaded', 0)} files "
             f"({human_bytes(s.get('mirror/bytes', 0))}); failed: {s.get('mirror/failed', 0)}"
             + (" — run `socialark mirror` to finish" if s.get("mirror/failed") else ""), err=True)
    data_dir = options.data_dir
    echo(f"  WARCs: {data_dir / 'warcs' / options.collection}", err=True)
    echo(f"  index: {data_dir / 'index.db'}", err=True)
