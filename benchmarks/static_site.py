"""Generate a deterministic static website for crawl benchmarks.

``pages`` HTML pages (5-10 KB each) spread over 20 directories, plus ``index.html``. Page ``i``
links to page ``i + 1`` (so every page is reachable from the index) and to ~9 other pages chosen
by a seeded RNG, with relative URLs. All pages share a stylesheet, a logo and a CSS background.

    python -m benchmarks.static_site DEST [--pages N]
"""

from __future__ import annotations

import argparse
import random
import struct
import zlib
from pathlib import Path

DIRS = 20
LINKS_PER_PAGE = 10
WORDS = (
    "archive",
    "capture",
    "platform",
    "record",
    "replay",
    "crawl",
    "frontier",
    "warc",
    "payload",
    "header",
    "digest",
    "mirror",
    "index",
    "post",
    "thread",
    "account",
)


def page_path(i: int) -> str:
    """Site-relative path of page ``i`` (1-based)."""
    return f"d{i % DIRS:02d}/page-{i:05d}.html"


def _png(width: int, height: int, seed: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(
        b"\x00" + bytes((x * 3 + seed) % 256 for x in range(width * 3)) for _ in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _page(i: int, pages: int, rnd: random.Random) -> str:
    targets = {i % pages + 1}
    while len(targets) < min(LINKS_PER_PAGE, pages):
        targets.add(rnd.randint(1, pages))
    links = "\n".join(f'<li><a href="../{page_path(t)}">page {t}</a></li>' for t in sorted(targets))
    size = rnd.randint(5000, 9500)
    paragraphs = []
    text_len = 0
    while text_len < size - 1500:  # leave room for markup and links
        para = " ".join(rnd.choice(WORDS) for _ in range(40))
        paragraphs.append(f"<p>{para}.</p>")
        text_len += len(para) + 8
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<title>Page {i}</title>\n<link rel="stylesheet" href="../static/site.css">\n'
        '</head>\n<body>\n<img src="../static/logo.png" alt="logo">\n'
        f"<h1>Page {i}</h1>\n" + "\n".join(paragraphs) + f"\n<ul>\n{links}\n</ul>\n"
        '<p><a href="../index.html">home</a></p>\n</body>\n</html>\n'
    )


def generate(dest: Path, pages: int = 2000, seed: int = 0) -> list[str]:
    """Write the site under ``dest``; return the site-relative paths of all HTML pages."""
    rnd = random.Random(seed)
    (dest / "static").mkdir(parents=True, exist_ok=True)
    for d in range(DIRS):
        (dest / f"d{d:02d}").mkdir(exist_ok=True)
    (dest / "static" / "site.css").write_text(
        "body { font-family: sans-serif; background: url(bg.png) repeat-x; }\n"
    )
    (dest / "static" / "logo.png").write_bytes(_png(64, 64, 1))
    (dest / "static" / "bg.png").write_bytes(_png(8, 64, 2))
    paths = []
    for i in range(1, pages + 1):
        path = page_path(i)
        (dest / path).write_text(_page(i, pages, rnd), encoding="utf-8")
        paths.append(path)
    first = "\n".join(
        f'<li><a href="{page_path(i)}">page {i}</a></li>'
        for i in range(1, min(LINKS_PER_PAGE, pages) + 1)
    )
    (dest / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<title>Benchmark site</title>\n<link rel="stylesheet" href="static/site.css">\n'
        f"</head>\n<body>\n<h1>Benchmark site</h1>\n<ul>\n{first}\n</ul>\n</body>\n</html>\n",
        encoding="utf-8",
    )
    return ["index.html", *paths]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--pages", type=int, default=2000)
    args = parser.parse_args(argv)
    paths = generate(args.dest, args.pages)
    print(f"wrote {len(paths)} HTML pages to {args.dest}")


if __name__ == "__main__":
    main()
