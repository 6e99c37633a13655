"""Items every platform spider yields (dataclasses; pipelines see them through ItemAdapter).

``source_url`` and ``source_timestamp`` (14 digits) name the capture an item was extracted from,
so its WARC record can always be found (``captures`` row with that url and timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Post:
    table: ClassVar[str] = "posts"
    platform: str
    post_id: str
    url: str | None
    author: str | None
    author_id: str | None
    created_at: str | None  # ISO 8601 UTC, e.g. 2024-01-02T03:04:05Z
    text: str
    content_html: str | None = None
    reply_to_id: str | None = None
    repost_of_id: str | None = None
    quote_of_id: str | None = None
    reply_count: int | None = None
    repost_count: int | None = None
    like_count: int | None = None
    lang: str | None = None
    media: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    source_url: str = ""
    source_timestamp: str = ""


@dataclass
class Account:
    table: ClassVar[str] = "accounts"
    platform: str
    account_id: str
    handle: str | None
    display_name: str | None = None
    url: str | None = None
    created_at: str | None = None
    description: str | None = None
    followers_count: int | None = None
    following_count: int | None = None
    posts_count: int | None = None
    avatar_url: str | None = None
    header_url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    source_url: str = ""
    source_timestamp: str = ""


@dataclass
class Media:
    table: ClassVar[str] = "media"
    platform: str
    url: str
    post_id: str | None
    media_type: str | None = None
    description: str | None = None
    preview_url: str | None = None
    source_url: str = ""
    source_timestamp: str = ""


@dataclass
class PostGone:
    """A capture showing a post gone: its URL answered 404/410 or a "not found" tombstone.

    Not a table of its own: ``storage.versions.mark_gone`` sets ``posts.deleted_at``."""

    table: ClassVar[str] = "post_gone"
    platform: str
    post_id: str
    source_url: str = ""
    source_timestamp: str = ""
