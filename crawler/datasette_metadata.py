"""Datasette metadata for ``socialark browse``, generated from ``docs/index-schema.md``.

Table and column descriptions are parsed from the schema document (``## `table` `` headings, the
paragraph under them, and the ``| `column` | meaning |`` rows), so the documentation and what a
researcher sees in Datasette never diverge. Facets and full-text search are added for the tables
that exist in the database being browsed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlite_utils import Database

SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "index-schema.md"

FACETS = {
    "posts": ["platform", "author", "created_at"],
    "captures": ["collection", "mime", "status"],
    "pages": ["collection"],
    "warc_files": ["collection", "state"],
    "crawls": ["collection", "spider", "state"],
    "media": ["mime"],
}
DATE_FACETS = {"posts": ["created_at"]}
SORT_DESC = {"posts": "created_at", "captures": "timestamp", "crawls": "started_at"}

_HEADING = re.compile(r"^##\s+`([^`]+)`\s*$")
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|\s*$")


def parse_schema_doc(text: str) -> dict[str, dict[str, Any]]:
    """``{table: {"description": str, "columns": {column: description}}}`` from the markdown."""
    tables: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = tables.setdefault(heading.group(1), {"description": "", "columns": {}})
            continue
        if line.startswith("#"):
            current = None
            continue
        if current is None:
            continue
        row = _ROW.match(line)
        if row:
            current["columns"][row.group(1)] = row.group(2)
        elif line.strip() and not line.startswith("|") and not current["columns"]:
            current["description"] = (current["description"] + " " + line.strip()).strip()
    return tables


def _fts_table(db: Database, table: str) -> str | None:
    fts = f"{table}_fts"
    return fts if fts in db.table_names() else None


def build_metadata(db: Database, doc: Path = SCHEMA_DOC, *, database_name: str = "index") -> dict[str, Any]:
    """Datasette metadata for ``db`` (tables documented in ``doc``; FTS and facets as present)."""
    documented = parse_schema_doc(doc.read_text(encoding="utf-8")) if doc.exists() else {}
    tables: dict[str, Any] = {}
    for table in db.table_names():
        # sqlite-utils' bookkeeping (`_sqlite_migrations`) and FTS shadow tables are not data.
        if table.startswith("_") or table.endswith(("_fts", "_fts_data", "_fts_idx", "_fts_docsize", "_fts_config", "_fts_content")):
            tables[table] = {"hidden": True}
            continue
        docs = documented.get(table, {"description": "", "columns": {}})
        columns = [c.name for c in db[table].columns]
        entry: dict[str, Any] = {
            "description": docs["description"],
            "columns": {c: docs["columns"].get(c, "") for c in columns},
        }
        facets: list[Any] = [f for f in FACETS.get(table, []) if f in columns and f not in DATE_FACETS.get(table, [])]
        facets += [{"date": f} for f in DATE_FACETS.get(table, []) if f in columns]
        if facets:
            entry["facets"] = facets
        if SORT_DESC.get(table) in columns:
            entry["sort_desc"] = SORT_DESC[table]
        fts = _fts_table(db, table)
        if fts:
            entry["fts_table"] = fts
            entry["fts_pk"] = "rowid"
        tables[table] = entry
    return {
        "title": "socialark index",
        "description": "Captures, WARC files, crawls and extracted posts/pages of a socialark archive. "
                       "Column meanings come from docs/index-schema.md.",
        "databases": {database_name: {"tables": tables}},
    }


def undocumented_columns(metadata: dict[str, Any]) -> list[str]:
    """``table.column`` names that have no description (used by tests and ``browse --check``)."""
    missing = []
    for database in metadata["databases"].values():
        for table, entry in database["tables"].items():
            if entry.get("hidden"):
                continue
            if not entry.get("description"):
                missing.append(f"{table} (table)")
            missing += [f"{table}.{c}" for c, d in entry["columns"].items() if not d]
    return missing
