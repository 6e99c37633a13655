"""Post extraction reads back only the captures an extractor can use (issue 13, speed), and
``socialark index`` starts without the crawl stack (lazy command loading)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawler.extraction import reextract_files
from storage.db import open_database
from storage.offload import RecordSource
from tests.conftest import ROOT, socialark

CARD = (b'<html><body><div class="tgme_widget_message" data-post="harbourwatch/5">'
        b'<div class="tgme_widget_message_text js-message_text">tide tables</div>'
        b'<a class="tgme_widget_message_date" href="https://t.me/harbourwatch/5">'
        b'<time datetime="2024-01-01T00:00:00+00:00"></time></a></div></body></html>')

CAPTURES = [
    # (url, status, content type, body): only the first and the 404 can yield anything
    ("https://t.me/harbourwatch/5?embed=1", "200 OK", "text/html; charset=utf-8", CARD),
    ("https://t.me/harbourwatch/7", "404 Not Found", "text/html", b"<html>gone</html>"),
    ("https://site.example/p/1", "200 OK", "text/html", b"<html><p>not telegram</p></html>"),
    ("https://site.example/api/2", "200 OK", "application/json", b'[{"id": "2"}]'),
    ("https://t.me/harbourwatch/6", "200 OK", "image/jpeg", b"tgme_" + bytes(200)),
    ("https://t.me/harbourwatch/8", "500 Server Error", "text/html", CARD),
    ("https://site.example/news", "200 OK", "text/html", b"<html>a landing-like path</html>"),
]


def _warc(path: Path) -> Path:
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, status, ctype, body in CAPTURES:
            head = StatusAndHeaders(status, [("Content-Type", ctype),
                                             ("Content-Length", str(len(body)))],
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=head))
    return path


class CountingSource(RecordSource):
    """The real record source, counting the records it reads back."""

    reads: list[int]

    def read(self, name: str, path: str, offset: int, length: int) -> bytes | None:
        self.reads.append(offset)
        return super().read(name, path, offset, length)


def test_only_wanted_captures_are_read_back(tmp_path: Path) -> None:
    warc = _warc(tmp_path / "foreign.warc.gz")
    data_dir = tmp_path / "data"
    proc = socialark("index", str(warc), data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    db = open_database(data_dir / "index.db")
    posts = [r[0] for r in db.execute("SELECT post_id FROM posts").fetchall()]
    assert posts == ["harbourwatch/5"]

    source = CountingSource(db)
    source.reads = []
    reextract_files(db, [warc.name], source=source)
    # the card, the 404 of a post URL (a deleted post) and the HTML at a landing-like path
    # (/news: read, but not parsed: no tgme_ markup); not /p/1, /api/2, the image, the 500
    assert len(source.reads) == 3
    assert [r[0] for r in db.execute("SELECT post_id FROM posts").fetchall()] == posts


def test_index_starts_without_the_crawl_stack(tmp_path: Path) -> None:
    warc = _warc(tmp_path / "foreign.warc.gz")
    code = ("import sys\n"
            "from crawler.cli import main\n"
            "try:\n"
            f"    main(['index', {str(warc)!r}, '--data-dir', {str(tmp_path / 'd')!r}])\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('scrapy', 'twisted', 'playwright') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
