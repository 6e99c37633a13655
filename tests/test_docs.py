"""Docs stay true: every setting, command and index column is documented."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from crawler.cli import main
from storage.db import open_database

ROOT = Path(__file__).resolve().parent.parent


def _setting_names() -> set[str]:
    names: set[str] = set()
    for folder in ("crawler", "spiders"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r"\bARCHIVE_[A-Z0-9_]+[A-Z0-9]\b", path.read_text()))
    return names


def test_every_archive_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "settings.md").read_text()
    missing = sorted(n for n in _setting_names() if f"`{n}`" not in doc)
    assert not missing, f"document these in docs/settings.md: {missing}"


def _all_commands(group, prefix=()):  # type: ignore[no-untyped-def]
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        yield path, cmd
        if hasattr(cmd, "commands"):
            yield from _all_commands(cmd, path)


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    runner = CliRunner()
    for path, cmd in _all_commands(main):
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
        assert f"socialark {' '.join(path)}" in readme, f"README does not document `socialark {' '.join(path)}`"


def test_every_index_column_is_documented(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "index-schema.md").read_text()
    db = open_database(tmp_path / "index.db")
    conn: sqlite3.Connection = db.conn
    tables = [t for (t,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%fts%'"
        " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'")]
    for table in tables:
        section = re.search(rf"## `{table}`\n(.*?)(?=\n## |\Z)", doc, re.S)
        assert section, f"docs/index-schema.md has no section for table {table}"
        for (_, column, *_rest) in conn.execute(f"PRAGMA table_info({table})"):
            assert f"| `{column}` |" in section.group(1), f"{table}.{column} undocumented"
