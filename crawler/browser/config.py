"""``ARCHIVE_BROWSER_*`` settings, read once into a frozen dataclass."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

DEBIAN_CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage",
)


def string_list(value: Any) -> list[str]:
    """A list setting given as a list, a JSON list string (from the CLI) or one plain string.

    Not ``Settings.getlist``: that splits on commas, and CSS selectors contain commas.
    """
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [text]


def default_executable() -> str | None:
    """Debian's Chromium when installed, else None (Playwright's bundled browser)."""
    return DEBIAN_CHROMIUM if os.path.exists(DEBIAN_CHROMIUM) else None


@dataclass(frozen=True)
class BrowserConfig:
    executable: str | None
    headless: bool = True
    concurrency: int = 2
    scroll_limit: int = 20
    page_timeout: float = 60.0
    idle_time: float = 0.5
    behavior_scripts: tuple[str, ...] = ()  # JavaScript source, one per file
    load_more: tuple[str, ...] = ()
    recycle_pages: int = 50
    retries: int = 1
    screenshot: bool = True
    user_agent: str | None = None
    viewport: tuple[int, int] = (1280, 800)
    cookies: tuple[dict[str, Any], ...] = ()  # ARCHIVE_COOKIES_FILE, as add_cookies takes them
    body_timeout: float = 15.0  # most seconds one response.body() read may take
    storage_state: str | None = None  # ARCHIVE_BROWSER_PROFILE (socialark login)

    @classmethod
    def from_settings(cls, s: BaseSettings) -> BrowserConfig:
        executable = s.get("ARCHIVE_BROWSER_EXECUTABLE") or default_executable()
        if executable and not os.path.exists(executable):
            raise NotConfigured(f"ARCHIVE_BROWSER_EXECUTABLE {executable} does not exist")
        scripts = []
        for name in string_list(s.get("ARCHIVE_BROWSER_BEHAVIOR_SCRIPTS")):
            try:
                scripts.append(Path(name).read_text(encoding="utf-8"))
            except OSError as exc:
                raise NotConfigured(f"behavior script {name}: {exc.strerror or exc}") from exc
        return cls(
            executable=executable,
            headless=s.getbool("ARCHIVE_BROWSER_HEADLESS", True),
            concurrency=max(1, s.getint("ARCHIVE_BROWSER_CONCURRENCY", 2)),
            scroll_limit=max(0, s.getint("ARCHIVE_BROWSER_SCROLL_LIMIT", 20)),
            page_timeout=max(1.0, s.getfloat("ARCHIVE_BROWSER_PAGE_TIMEOUT", 60.0)),
            idle_time=max(0.05, s.getfloat("ARCHIVE_BROWSER_IDLE_TIME", 0.5)),
            behavior_scripts=tuple(scripts),
            load_more=tuple(string_list(s.get("ARCHIVE_BROWSER_LOAD_MORE"))),
            recycle_pages=max(1, s.getint("ARCHIVE_BROWSER_RECYCLE_PAGES", 50)),
            retries=max(0, s.getint("ARCHIVE_BROWSER_RETRIES", 1)),
            screenshot=s.getbool("ARCHIVE_BROWSER_SCREENSHOT", True),
            user_agent=s.get("ARCHIVE_BROWSER_USER_AGENT") or None,
            cookies=_file_cookies(s.get("ARCHIVE_COOKIES_FILE") or ""),
            body_timeout=max(0.1, s.getfloat("ARCHIVE_BROWSER_BODY_TIMEOUT", 15.0)),
            storage_state=s.get("ARCHIVE_BROWSER_PROFILE") or None,
        )


def _file_cookies(path: str) -> tuple[dict[str, Any], ...]:
    from crawler.cookiefile import CookieFileError, load_cookies

    if not path:
        return ()
    try:
        return tuple(c.to_playwright() for c in load_cookies(path))
    except CookieFileError as exc:
        raise NotConfigured(str(exc)) from exc


def browser_problem(executable: str | None) -> str | None:
    """Why a browser crawl cannot start here (a message for the user), or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "--browser needs Playwright, a dependency of socialark: reinstall it (pip install playwright)"
    executable = executable or default_executable()
    if executable:
        if not os.path.exists(executable):
            return f"browser executable {executable} not found (ARCHIVE_BROWSER_EXECUTABLE)"
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        bundled = pw.chromium.executable_path
    if not os.path.exists(bundled):
        return ("no Chromium found: install it (Debian: apt-get install chromium) or run "
                "`playwright install chromium`, or give -s ARCHIVE_BROWSER_EXECUTABLE=/path")
    return None
