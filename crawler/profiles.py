"""Saved browser logins (``socialark login URL --profile NAME``, ``--profile NAME`` on crawls).

A profile is Playwright's storage state (cookies and local storage) of a browser the user
logged in with by hand, kept at ``DATA_DIR/profiles/NAME.json``: the file is created with mode
0600 in a 0700 directory, never written into a WARC, and a crawl records only the profile's name
in ``crawls.config``. Its cookies go to every browser context (``storage_state``) and to
Scrapy's cookie jars (``crawler/middlewares/cookies.py``), like ``--cookies``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from crawler.cookiefile import FileCookie

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ProfileError(ValueError):
    """A bad profile name, or a profile that does not exist or cannot be read."""


def profile_path(data_dir: Path | str, name: str) -> Path:
    if not NAME_RE.match(name or ""):
        raise ProfileError(f"profile names are letters, digits, '.', '_' and '-' (got {name!r})")
    return Path(data_dir) / "profiles" / f"{name}.json"


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the storage state readable by its owner only (0600, directory 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(state, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_state(path: Path | str) -> dict[str, Any]:
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read saved login {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ProfileError(f"saved login {path} is not a browser state file: {exc}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("cookies", []), list):
        raise ProfileError(f"saved login {path} is not a browser state file")
    return state


def state_cookies(state: dict[str, Any]) -> list[FileCookie]:
    """The state's cookies as ``FileCookie`` (for Scrapy's jars)."""
    out = []
    for c in state.get("cookies") or []:
        if not isinstance(c, dict) or not c.get("name") or not c.get("domain"):
            continue
        expires = c.get("expires", -1)
        out.append(FileCookie(
            domain=str(c["domain"]).lower(), include_subdomains=str(c["domain"]).startswith("."),
            path=c.get("path") or "/", secure=bool(c.get("secure")),
            expires=int(expires) if isinstance(expires, int | float) and expires > 0 else 0,
            name=str(c["name"]), value=str(c.get("value", "")),
            http_only=bool(c.get("httpOnly"))))
    return out
