"""Recover what dead crawl processes left in a data dir, without crawling.

A worker killed with ``kill -9`` leaves its current WARC as ``<name>.warc.gz.open`` (and maybe
captures the index never saw). The next crawl in that data dir repairs it when it starts; a
data dir that will never crawl again (a dead worker's machine) is repaired here instead, by
``socialark mirror`` before it uploads, and by ``crawl --processes N`` before its processes
start (so they do not race to repair the same file).

The repair is the crawl's own (``ArchiveRecorder.repair_leftovers``): cut after the last
complete record, close, index, add to the manifest, and re-extract posts from the recovered
captures. ``.open`` files of processes still running on this host are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from storage.manifest import make_signer
from storage.recorder import ArchiveRecorder, RecorderConfig, leftover_open_files

REPAIR_CRAWL_ID = "leftover-repair"  # never used for a new file: a repair writes no WARC


@dataclass
class LeftoverReport:
    collection: str
    repaired: list[str] = field(default_factory=list)  # files cut and closed
    reconciled: list[str] = field(default_factory=list)  # rows fixed after a kill mid-close
    items: int = 0  # posts/accounts/media re-extracted


def collections_with_warcs(data_dir: Path) -> list[str]:
    root = data_dir / "warcs"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


def repair_collection(data_dir: Path, collection: str) -> LeftoverReport:
    """Repair one collection's leftovers (see the module docstring)."""
    from crawler.extraction import reextract_files

    report = LeftoverReport(collection)
    config = RecorderConfig(data_dir=data_dir, collection=collection, crawl_id=REPAIR_CRAWL_ID,
                            signer=make_signer(data_dir, collection))
    recorder = ArchiveRecorder(config)
    try:
        reports = recorder.repair_leftovers()
        for rep in reports:
            (report.repaired if rep.kind == "repaired" else report.reconciled).append(rep.name)
        recovered = [rep.name for rep in reports if rep.records]
        if recovered:
            index, counted = recorder.index, []
            index.run_write(lambda: counted.append(reextract_files(index.db, recovered)))
            report.items = counted[-1] if counted else 0
    finally:
        recorder.close()
        recorder.index.close()
    return report


def repair_data_dir(data_dir: Path, collection: str | None = None) -> list[LeftoverReport]:
    """Repair every collection (or one) of ``data_dir`` that has ``.open`` WARCs or may have
    rows a kill left inconsistent; returns what was done, per collection."""
    names = [collection] if collection else collections_with_warcs(data_dir)
    reports = []
    for name in names:
        warc_dir = data_dir / "warcs" / name
        if not warc_dir.exists():
            continue
        reports.append(repair_collection(data_dir, name))
    return [r for r in reports if r.repaired or r.reconciled]


def collections_with_leftovers(data_dir: Path) -> list[str]:
    """Collections holding ``.open`` WARCs of processes that are gone."""
    root = data_dir / "warcs"
    return sorted({p.relative_to(root).parts[0] for p in leftover_open_files(root)})
