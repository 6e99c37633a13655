"""The import rules that keep the layers apart (issue 18), checked on the source with ``ast``.

* ``storage/`` is a library: it imports neither Scrapy, Twisted, click, nor ``crawler``/``spiders``.
* ``spiders/`` never imports the command line (``crawler.cli``), nor a database driver: spiders
  read the index through ``storage.archived.ArchivedItems``, not SQL.
* ``crawler/`` finds platforms only through the registry (``crawler/platforms.py``): it never
  imports a ``spiders`` module, except that a platform's own crawl command
  (``crawler/cli/cmd_crawl_<platform>.py``) may import that platform's package (its option
  parsers).
* Nothing under ``crawler/`` except ``crawler/cli/`` imports click or ``crawler.cli`` (exit
  codes and crawl errors are in ``crawler/errors.py``).

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "crawler/platforms.py"


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module name) of every import in ``path``, absolute names only."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
            for alias in node.names:  # ``from spiders import mastodon``
                yield node.lineno, f"{node.module}.{alias.name}"


def _under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _rule_broken(rel: str, module: str) -> str | None:
    """Why importing ``module`` from the file ``rel`` (posix, relative to the root) breaks a
    layer rule, or None."""
    if rel.startswith("storage/") and _under(module, "scrapy", "twisted", "click", "crawler",
                                              "spiders"):
        return "storage/ must not import Scrapy, Twisted, click or the crawler"
    if rel.startswith("spiders/") and _under(module, "crawler.cli"):
        return "spiders/ must not import the command line"
    if rel.startswith("spiders/") and _under(module, "sqlite3", "sqlite_utils"):
        return "spiders/ read the index through storage.archived, not SQL"
    if rel.startswith("crawler/"):
        if _under(module, "click", "crawler.cli") and not rel.startswith("crawler/cli/"):
            return "only crawler/cli/ imports click and the command line"
        if _under(module, "spiders") and rel != REGISTRY and not _own_command(rel, module):
            return "crawler/ finds platforms through crawler/platforms.py only"
    return None


def _own_command(rel: str, module: str) -> bool:
    """``crawler/cli/cmd_crawl_<p>.py`` importing ``spiders.<p>...`` (its own platform)."""
    name = Path(rel).stem
    if not (rel.startswith("crawler/cli/") and name.startswith("cmd_crawl_")):
        return False
    return _under(module, f"spiders.{name.removeprefix('cmd_crawl_')}")


def violations(root: Path) -> list[str]:
    """One line per import statement that breaks a rule."""
    out: dict[tuple[str, int], str] = {}
    for package in ("storage", "spiders", "crawler"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for line, module in imported_modules(path):
                why = _rule_broken(rel, module)
                if why:
                    out.setdefault((rel, line), f"{rel}:{line}: imports {module}: {why}")
    return [out[key] for key in sorted(out)]


def test_the_project_keeps_its_layers() -> None:
    assert violations(ROOT) == []


def test_every_rule_catches_a_violation(tmp_path: Path) -> None:
    files = {
        "storage/bad.py": "import scrapy\nfrom twisted.internet import reactor\n",
        "storage/lazy.py": "def f():\n    import click\n",
        "storage/up.py": "from crawler.extraction import Capture\n",
        "spiders/x/spider.py": "from crawler.cli.common import ExitCode\n",
        "spiders/x/sql.py": "import sqlite3\n",
        "crawler/run.py": "import click\n",
        "crawler/distributed/worker.py": "from crawler.cli.common import ExitCode\n",
        "crawler/extraction.py": "from spiders.mastodon import extract\n",
        "crawler/other.py": "from spiders import mastodon\n",
        "crawler/cli/cmd_crawl_reddit.py": "from spiders.mastodon.parsers import parse_since\n",
        # allowed: the registry, a command importing its own platform, spiders using crawler
        "crawler/platforms.py": "import importlib\nimport spiders\n",
        "crawler/cli/cmd_crawl_mastodon.py": "import click\nfrom spiders.mastodon import parsers\n",
        "spiders/x/extract.py": "from crawler.extraction import Capture\n",
        "storage/fine.py": "import sqlite3\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = {v.split(":", 1)[0] for v in violations(tmp_path)}
    assert found == {
        "storage/bad.py", "storage/lazy.py", "storage/up.py", "spiders/x/spider.py",
        "spiders/x/sql.py",
        "crawler/run.py", "crawler/distributed/worker.py", "crawler/extraction.py", "crawler/other.py",
        "crawler/cli/cmd_crawl_reddit.py",
    }
    assert len([v for v in violations(tmp_path) if v.startswith("storage/bad.py")]) == 2


WITHOUT_EXTRACTOR = {"facebook"}


def test_every_platform_package_is_registered_and_its_spider_found_by_name() -> None:
    from scrapy.settings import Settings
    from scrapy.spiderloader import SpiderLoader

    from crawler.platforms import platforms

    packages = {p.parent.name for p in (ROOT / "spiders").glob("*/spider.py")}
    registered = platforms()
    assert set(registered) == packages
    loader = SpiderLoader.from_settings(Settings({"SPIDER_MODULES": ["spiders"]}))
    for platform in registered.values():
        assert loader.load(platform.spider).name == platform.spider
        # Facebook's posts are parsed from the rendered DOM, which no WARC response holds: it
        # has nothing for `index --rebuild` to re-extract (docs/facebook.md).
        if platform.name in WITHOUT_EXTRACTOR:
            assert platform.extractor is None
            continue
        assert platform.extractor is not None and platform.extractor.platform == platform.name
