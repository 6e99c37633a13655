"""A snapshot of one distributed crawl for ``crawl-status`` (read-only: never changes Redis)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from crawler.distributed.keys import CrawlKeys
from crawler.distributed.registry import CrawlRecord
from crawler.distributed.scripts import Scripts


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


@dataclass
class WorkerStatus:
    worker_id: str
    host: str
    pid: int
    role: str
    pages: int
    rate: float
    alive: bool
    expires_in: float
    paused: list[dict[str, Any]] = field(default_factory=list)  # hosts it is not sending to


@dataclass
class CrawlStatus:
    crawl_id: str
    spider: str
    state: str
    reason: str
    queued: int
    in_flight: int
    pages: int
    seen: int
    requeued: int
    lost_workers: int
    max_pages: int
    time_left: float | None
    workers: list[WorkerStatus] = field(default_factory=list)

    @property
    def display_state(self) -> str:
        if self.state == "stopping" and not any(w.alive for w in self.workers):
            return "stopped"
        return self.state

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = self.display_state
        out["workers_alive"] = sum(1 for w in self.workers if w.alive)
        out["rate"] = round(sum(w.rate for w in self.workers if w.alive), 2)
        out["paused_hosts"] = [{**p, "worker_id": w.worker_id}
                               for w in self.workers for p in w.paused]
        return out


def _pauses(raw: str, now: float) -> list[dict[str, Any]]:
    """A worker's published pauses (``crawler.extensions.pauses``) that have not ended."""
    try:
        entries = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict) and float(e.get("until") or 0) > now]


def crawl_status(client: Any, record: CrawlRecord) -> CrawlStatus:
    keys = CrawlKeys(record.crawl_id)
    now_ms = int(Scripts(client).now())
    pipe = client.pipeline(transaction=False)
    pipe.zcard(keys.queue).scard(keys.seen).get(keys.pages).get(keys.requeued)
    pipe.get(keys.lost_workers).zrange(keys.workers, 0, -1, withscores=True)
    queued, seen, pages, requeued, lost, members = pipe.execute()
    workers, in_flight = [], 0
    for member, expiry in members:
        wid = _text(member)
        info = {_text(k): _text(v) for k, v in client.hgetall(keys.info(wid)).items()}
        held = int(client.hlen(keys.leases(wid)))
        alive = expiry > now_ms
        if alive:
            in_flight += held
        workers.append(WorkerStatus(
            worker_id=wid, host=info.get("host", "?"), pid=int(info.get("pid") or 0),
            role=info.get("role", "?"), pages=int(info.get("pages") or 0),
            rate=float(info.get("rate") or 0.0), alive=alive,
            expires_in=round((expiry - now_ms) / 1000, 1),
            paused=_pauses(info.get("paused", ""), time.time()) if alive else [],
        ))
    time_left = None
    if record.deadline_ms:
        time_left = round(max(0.0, (record.deadline_ms - now_ms) / 1000), 1)
    return CrawlStatus(
        crawl_id=record.crawl_id, spider=str(record.config.get("spider", "?")),
        state=record.state, reason=record.reason, queued=int(queued), in_flight=in_flight,
        pages=int(pages or 0), seen=int(seen), requeued=int(requeued or 0),
        lost_workers=int(lost or 0), max_pages=record.max_pages, time_left=time_left,
        workers=workers,
    )


def format_status(status: CrawlStatus) -> str:
    s = status
    lines = [
        f"crawl {s.crawl_id} ({s.spider}): {s.display_state}"
        + (f" ({s.reason})" if s.reason and s.display_state != "running" else ""),
        f"  queued {s.queued:,}   in flight {s.in_flight:,}   pages done {s.pages:,}"
        + (f" of {s.max_pages:,}" if s.max_pages else "")
        + f"   URLs seen {s.seen:,}",
        f"  requeued from lost workers {s.requeued:,} ({s.lost_workers} worker(s) lost)"
        + (f"   time left {s.time_left:.0f}s" if s.time_left is not None else ""),
    ]
    for w in s.workers:
        for p in w.paused:
            lines.append(f"  paused: {p['host']} ({p['reason']}) until {p['until_iso']}"
                         f" (in {max(p['until'] - time.time(), 0):.0f}s) [{w.worker_id}]")
    alive = [w for w in s.workers if w.alive]
    lines.append(f"  workers alive: {len(alive)}, {sum(w.rate for w in alive):.1f} pages/s")
    for w in s.workers:
        mark = "" if w.alive else "  (heartbeat expired)"
        lines.append(f"    {w.worker_id:<32} {w.role:<6} {w.pages:>8,} pages "
                     f"{w.rate:>7.1f}/s{mark}")
    return "\n".join(lines)
