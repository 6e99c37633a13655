"""``GET /search``: the post search of ``socialark search`` as a JSON API (served by
``socialark serve`` next to the CDX API, storage/cdx_server.py).

Parameters: ``q`` (FTS5 query, required), ``limit`` (1..``MAX_API_LIMIT``, default 20),
``sort`` (relevance|newest|oldest), ``collection``, ``platform``, ``author``, ``since``,
``until``. Every bad parameter -- unknown, repeated, empty where a value is needed, out of
range, a date or query FTS5 cannot read -- is a 400 with ``{"error": "..."}``; the engine is
``storage.search.search_posts``, the same as the CLI's.
"""

from __future__ import annotations

import sqlite3
from http import HTTPStatus
from typing import Any

from storage.cdx import QueryTimeout
from storage.errors import StorageError
from storage.names import CollectionNameError, check_collection
from storage.search import SORTS, PostFilter, SearchError, search_posts

MAX_API_LIMIT = 1000
PARAMS = ("q", "limit", "sort", "collection", "platform", "author", "since", "until")
RESULT_FIELDS = ("post_id", "platform", "collection", "author", "author_id", "created_at",
                 "url", "snippet", "score", "lang", "reply_to_id", "api_replay_url",
                 "page_replay_url")


class BadSearch(Exception):
    """A request parameter problem (answered with 400)."""


def parse_params(params: dict[str, list[str]]) -> dict[str, Any]:
    """Validate ``parse_qs`` output (``keep_blank_values=True``) into search arguments."""
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise BadSearch(f"unknown parameter {unknown[0][:40]!r}: use {', '.join(PARAMS)}")
    for name, values in params.items():
        if len(values) > 1:
            raise BadSearch(f"parameter {name!r} given {len(values)} times: give it once")
    value = {name: values[0] for name, values in params.items()}
    query = value.get("q", "")
    if not query.strip():
        raise BadSearch("missing q parameter: /search?q=words")
    if len(query) > 2000:
        raise BadSearch("q is too long: at most 2000 characters")
    limit_text = value.get("limit", "20").strip()
    if (not limit_text.isascii() or not limit_text.isdigit() or len(limit_text) > 6
            or not 0 < int(limit_text) <= MAX_API_LIMIT):
        raise BadSearch(f"invalid limit {value.get('limit', '')[:30]!r}: use an integer from 1 "
                        f"to {MAX_API_LIMIT}")
    sort = value.get("sort", "relevance") or "relevance"
    if sort not in SORTS:
        raise BadSearch(f"invalid sort {sort[:30]!r}: use relevance, newest or oldest")
    collection = value.get("collection") or None
    if collection is not None:
        try:
            check_collection(collection)
        except CollectionNameError as exc:
            raise BadSearch(str(exc)) from None
    flt = PostFilter(platform=value.get("platform") or None, author=value.get("author") or None,
                     since=value.get("since") or None, until=value.get("until") or None,
                     collection=collection)
    return {"query": query, "limit": int(limit_text), "sort": sort, "flt": flt}


def result(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in RESULT_FIELDS if k != "score"}
    out["score"] = -row["rank"] if row.get("rank") is not None else None
    out["media"] = row.get("media") or []
    return out


def run_search(db: Any, params: dict[str, list[str]], *, replay_base: str,
               timeout: float | None) -> tuple[HTTPStatus, dict[str, Any]]:
    """The status and JSON body of one ``/search`` request (never raises for bad input)."""
    try:
        args = parse_params(params)
        rows = [result(r) for r in search_posts(
            db, args["query"], args["flt"], limit=args["limit"], sort=args["sort"],
            replay_base=replay_base, marks=("<mark>", "</mark>"), timeout=timeout)]
    except (BadSearch, SearchError) as exc:
        return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
    except QueryTimeout as exc:
        return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)}
    except StorageError as exc:
        return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)}
    except sqlite3.Error as exc:
        return HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"index error: {exc}"}
    return HTTPStatus.OK, {"query": args["query"], "sort": args["sort"], "limit": args["limit"],
                           "count": len(rows), "results": rows}
