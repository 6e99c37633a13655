"""Spiders, one module or package per platform. ``get_spider_class(name)`` maps CLI names."""

from __future__ import annotations

import importlib

SPIDERS = {
    "site": "spiders.site:SiteSpider",
    "ids": "spiders.ids:IdsSpider",
    "mastodon": "spiders.mastodon.spider:MastodonSpider",
    "bluesky": "spiders.bluesky.spider:BlueskySpider",
    "telegram": "spiders.telegram.spider:TelegramSpider",
    "reddit": "spiders.reddit.spider:RedditSpider",
    "discourse": "spiders.discourse.spider:DiscourseSpider",
    "x": "spiders.x.spider:XSpider",
    "facebook": "spiders.facebook.spider:FacebookSpider",
}


def get_spider_class(name: str) -> type:
    module, _, cls = SPIDERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
