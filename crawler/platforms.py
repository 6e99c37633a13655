"""The platform registry: the one place ``crawler/`` learns what platforms exist.

Each platform is a package under ``spiders/`` (``PLATFORM_PACKAGES``) with a ``platform.py``
module defining ``PLATFORM = Platform(...)``: its spider's name, its extractor (the pure
function the spider calls live and ``socialark index --rebuild`` calls on old WARCs, whose
``matches(url)`` is the platform's URL patterns), and its rate-limit quirks as downloader
middlewares. The registry finds those modules by walking the packages, so nothing in
``crawler/`` names a platform module, and adding a platform is adding one package
(docs/platforms.md). ``platform.py`` must stay Scrapy-free: ``index --rebuild`` loads it
without a crawler; middlewares are named by import path, loaded by Scrapy only when crawling.

Spider classes are found by Scrapy's own spider loader (``SPIDER_MODULES = ["spiders"]``),
by name, for platforms and generic spiders (``site``, ``ids``) alike.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.extraction import Extractor

PLATFORM_PACKAGES: tuple[str, ...] = ("spiders",)
PLATFORM_MODULE = "platform"


@dataclass(frozen=True)
class Platform:
    """What a platform package registers (``spiders/<platform>/platform.py``)."""

    name: str
    spider: str  # the spider's ``name``: Scrapy's spider loader finds the class
    extractor: Extractor | None = None
    # Rate-limit quirks: downloader middlewares (import path -> order) enabled for this
    # platform's spider next to the generic RateLimitMiddleware (600).
    downloader_middlewares: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}))


@functools.cache
def platforms() -> dict[str, Platform]:
    """Every registered platform by name (loaded once per process)."""
    found: dict[str, Platform] = {}
    for package_name in PLATFORM_PACKAGES:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not info.ispkg or info.name.startswith("_"):
                continue
            module_name = f"{package_name}.{info.name}.{PLATFORM_MODULE}"
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    continue  # a package without a platform.py: not a platform
                raise
            platform: Platform = module.PLATFORM
            if platform.name in found:
                raise RuntimeError(f"platform {platform.name!r} registered twice "
                                   f"({module_name})")
            found[platform.name] = platform
    return found


def get_platform(name: str) -> Platform | None:
    return platforms().get(name)


def platform_of_spider(spider_name: str) -> Platform | None:
    """The platform whose spider is ``spider_name`` (None for generic spiders: site, ids)."""
    return next((p for p in platforms().values() if p.spider == spider_name), None)


def extractors() -> list[Extractor]:
    """The extractors of every registered platform (live extraction and ``index --rebuild``)."""
    return [p.extractor for p in platforms().values() if p.extractor is not None]


__all__ = ["Platform", "extractors", "get_platform", "platform_of_spider", "platforms"]
