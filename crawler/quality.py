"""The capture-quality gate's rules: is this answer the content, or a wall in front of it?

Pure Python (no Scrapy): :func:`judge` looks at one answer (the URL asked for, the URL it came
from after redirects or the page's own navigation, status, content type, body) and returns a
:class:`Verdict` when a rule matches. ``crawler.middlewares.quality`` acts on it (marks it in the
index, pauses the host, retries, reports what stayed blocked).

Kinds, and what the crawl tells the user when a target stays behind one:

* ``login_wall``: a login page or dialog instead of the content → "login required: pass
  --cookies or --profile";
* ``challenge``: a bot check (Cloudflare "Just a moment…", "Verify you are human", CAPTCHAs);
* ``rate_limited``: a "too many requests" or "something went wrong" page served with 200;
* ``soft_404``: a "page not found" page served with 200.

A rule matches when every condition it has holds: ``url`` (regex searched in the final URL),
``text`` (regex searched, case-insensitively, in the page's visible text, title included),
``html`` (regex searched in the raw markup), ``statuses`` (the answer's status is one of them),
``max_text`` (the visible text is at most this long: a page *about* rate limits is not a rate
limit page), ``replaced`` (the final URL differs from the one asked for). Users add rules with
``ARCHIVE_QUALITY_RULES`` (a JSON file: a list of objects with these keys plus ``name`` and
``kind``); their rules are tried before the built-in ones. See docs/quality.md.
"""

from __future__ import annotations

import functools
import html as html_lib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

KINDS = ("login_wall", "challenge", "rate_limited", "soft_404")
# Kinds worth pausing the host and trying again for (a soft 404 stays one).
RETRIED_KINDS = frozenset({"login_wall", "challenge", "rate_limited"})
MESSAGES = {
    "login_wall": "login required: pass --cookies or --profile",
    "challenge": "a bot challenge blocked the capture: slow down (--delay) or capture with "
                 "--browser and a logged-in --profile",
    "rate_limited": "the site kept answering with a rate-limit or error page: retry later "
                    "with a larger --delay",
    "soft_404": "the page answered 'not found' (with status 200)",
}
TEXT_LIMIT = 200_000  # characters of markup looked at: walls are small pages
_MARKUP_TYPES = ("text/html", "application/xhtml")

_SCRIPT_RE = re.compile(r"<(script|style|noscript|template)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")


class QualityRulesError(ValueError):
    """``ARCHIVE_QUALITY_RULES`` cannot be read or holds a malformed rule."""


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    url: re.Pattern[str] | None = None
    text: re.Pattern[str] | None = None
    html: re.Pattern[str] | None = None
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({200}))
    max_text: int | None = None
    replaced: bool = False
    # Words (lowercase) of which the raw markup must hold at least one for the rule to be worth
    # running: a substring test in C spares the regexes on ordinary pages, which is what keeps
    # the gate cheap at crawl speed. Single words, so tags and line breaks cannot split them.
    hints: tuple[str, ...] = ()

    @classmethod
    def make(cls, spec: dict[str, Any]) -> Rule:
        """A rule from its JSON form (``url``/``text``/``html`` as regex strings)."""
        unknown = set(spec) - {"name", "kind", "url", "text", "html", "statuses", "max_text",
                               "replaced", "hints"}
        if unknown:
            raise QualityRulesError(f"rule {spec.get('name')!r}: unknown keys {sorted(unknown)}")
        name, kind = spec.get("name"), spec.get("kind")
        if not name or kind not in KINDS:
            raise QualityRulesError(f"rule {name!r}: needs a name and a kind among {KINDS}")
        if not any(spec.get(k) for k in ("url", "text", "html")):
            raise QualityRulesError(f"rule {name!r}: needs at least one of url, text, html")
        try:
            return cls(
                name=str(name), kind=str(kind),
                url=re.compile(spec["url"]) if spec.get("url") else None,
                text=re.compile(spec["text"], re.I) if spec.get("text") else None,
                html=re.compile(spec["html"], re.I) if spec.get("html") else None,
                statuses=frozenset(int(s) for s in spec.get("statuses", [200])),
                max_text=int(spec["max_text"]) if spec.get("max_text") is not None else None,
                replaced=bool(spec.get("replaced", False)),
                hints=tuple(str(h).lower() for h in spec.get("hints") or ()),
            )
        except (re.error, TypeError, ValueError) as exc:
            raise QualityRulesError(f"rule {name!r}: {exc}") from exc

    def matches(self, page: Page) -> bool:
        if page.status not in self.statuses:
            return False
        if self.replaced and not page.replaced:
            return False
        if self.hints and not any(h in page.markup_lower for h in self.hints):
            return False
        if self.url is not None and not self.url.search(page.final_url):
            return False
        if self.max_text is not None and len(page.text) > self.max_text:
            return False
        if self.html is not None and not self.html.search(page.markup):
            return False
        return self.text is None or bool(self.text.search(page.text))


@dataclass(frozen=True)
class Page:
    """One answer, as the rules see it (the derived views are computed once, when needed)."""

    url: str  # asked for
    final_url: str  # where the answer came from (redirects, client-side navigation)
    status: int
    markup: str

    @functools.cached_property
    def text(self) -> str:
        """Visible text, title included, whitespace collapsed."""
        return visible_text(self.markup)

    @functools.cached_property
    def markup_lower(self) -> str:
        return self.markup.lower()

    @functools.cached_property
    def replaced(self) -> bool:
        return _norm(self.url) != _norm(self.final_url)


@dataclass(frozen=True)
class Verdict:
    kind: str
    rule: str

    @property
    def message(self) -> str:
        return MESSAGES[self.kind]


def _norm(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/') or '/'}"


def visible_text(markup: str) -> str:
    """The text a reader sees (roughly: scripts and styles dropped, tags stripped)."""
    text = _TAG_RE.sub(" ", _SCRIPT_RE.sub(" ", markup))
    return _SPACE_RE.sub(" ", html_lib.unescape(text)).strip()


def _rule(name: str, kind: str, **spec: Any) -> Rule:
    return Rule.make({"name": name, "kind": kind, **spec})


SHORT = 3000  # visible characters: a wall, not an article that mentions one

BUILTIN_RULES: tuple[Rule, ...] = (
    # --- login walls ---
    _rule("x_login_flow", "login_wall", url=r"^https?://[^/]+/i/flow/login\b"),
    _rule("redirected_to_login", "login_wall", replaced=True,
          url=r"^https?://[^/]+/(log_?in|sign_?in|i/flow/signup)\b"),
    _rule("facebook_login_dialog", "login_wall", hints=["must", "facebook"],
          text=r"you must log in (first|to continue)|log in to continue to facebook|"
               r"see more (posts )?on facebook.{0,40}log in"),
    _rule("facebook_login_redirect", "login_wall", replaced=True,
          url=r"^https?://[^/]+/(login(\.php)?|checkpoint)\b"),
    _rule("instagram_login", "login_wall", replaced=True, url=r"^https?://[^/]+/accounts/login\b"),
    # A login form served instead of the URL asked for (a redirect or a client-side navigation).
    _rule("login_form_instead_of_content", "login_wall", replaced=True, max_text=SHORT,
          hints=["password"],
          html=r"<input[^>]+type=[\"']?password", text=r"\b(log ?in|sign ?in)\b"),
    # --- challenges ---
    _rule("cloudflare_challenge", "challenge", statuses=[200, 403, 429, 503],
          hints=["moment", "cloudflare", "challenge-platform", "cf-chl-"],
          html=r"<title>\s*(just a moment|attention required! \| cloudflare)|"
               r"/cdn-cgi/challenge-platform/|cf-chl-"),
    _rule("verify_human", "challenge", statuses=[200, 403, 429, 503], max_text=SHORT,
          hints=["human", "robot", "checking", "hold"],
          text=r"verify (that )?you are (a )?human|are you a robot|checking your browser|"
               r"press (&|and) hold"),
    _rule("captcha_page", "challenge", statuses=[200, 403, 429, 503], max_text=SHORT,
          hints=["captcha", "turnstile"],
          html=r"class=[\"'][^\"']*\b(g-recaptcha|h-captcha|cf-turnstile)\b|"
               r"(www\.google\.com/recaptcha|hcaptcha\.com/1/api\.js|"
               r"challenges\.cloudflare\.com/turnstile)"),
    # --- rate-limit and error pages served with 200 ---
    _rule("rate_limit_page", "rate_limited", max_text=SHORT, hints=["limit", "many", "slow"],
          text=r"rate limit (exceeded|reached)|too many requests|you are being rate limited|"
               r"slow down\b.{0,40}too (fast|quickly)"),
    _rule("error_page", "rate_limited", max_text=SHORT, hints=["wrong", "error", "unavailable"],
          text=r"something went wrong\. try reloading|an error occurred\. please try again "
               r"later|service (temporarily )?unavailable"),
    # --- soft 404s ---
    _rule("soft_404", "soft_404", max_text=SHORT,
          hints=["found", "exist", "requested", "available"],
          text=r"\b(page|post|content|account|user) (was )?not found\b|\b404\b.{0,20}not found|"
               "this (page|account|post) (doesn[\u2019']t|does not) exist|"
               r"the page you requested (cannot|could not) be (found|displayed)|"
               "this content isn[\u2019']t available"),
)


def load_rules(path: str | Path | None) -> tuple[Rule, ...]:
    """The user's rules from ``ARCHIVE_QUALITY_RULES`` (first), then the built-in ones."""
    if not path:
        return BUILTIN_RULES
    try:
        specs = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QualityRulesError(f"cannot read quality rules {path}: {exc}") from exc
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise QualityRulesError(f"quality rules {path}: expected a JSON list of objects")
    return tuple(Rule.make(s) for s in specs) + BUILTIN_RULES


def is_markup(content_type: str) -> bool:
    ctype = content_type.split(";", 1)[0].strip().lower()
    return not ctype or ctype in _MARKUP_TYPES


def judge(url: str, final_url: str, status: int, content_type: str, body: bytes | str,
          rules: Sequence[Rule] | Iterable[Rule] = BUILTIN_RULES) -> Verdict | None:
    """The first rule ``(url asked for, final url, status, type, body)`` matches, or None.

    Only HTML (or untyped) answers are judged: JSON, media and scripts never are."""
    if not is_markup(content_type):
        return None
    markup = body if isinstance(body, str) else body[:TEXT_LIMIT].decode("utf-8", "replace")
    markup = markup[:TEXT_LIMIT]
    page = Page(url=url, final_url=final_url, status=status, markup=markup)
    for rule in rules:
        if rule.matches(page):
            return Verdict(rule.kind, rule.name)
    return None
