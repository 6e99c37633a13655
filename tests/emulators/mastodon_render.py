"""JSON entities and HTML pages of the Mastodon family, per flavour (see PLATFORMS.md §2)."""

from __future__ import annotations

import html
from typing import Any

from tests.emulators.dataset import Account, MastodonDataset, Media, Status, plain_text

MISSING_AVATAR = "/avatars/original/missing.png"
MISSING_HEADER = "/headers/original/missing.png"

# Truth Social's status keys, in server order (PLATFORMS.md §2.11).
TRUTH_KEYS = (
    "id created_at in_reply_to_id quote_id in_reply_to_account_id sensitive spoiler_text "
    "visibility language uri url content account media_attachments mentions tags card group "
    "quote in_reply_to reblog sponsored replies_count reblogs_count favourites_count favourited "
    "reblogged muted pinned bookmarked poll emojis"
).split()


def profile_path(flavor: str, acc: Account) -> str:
    return f"/@{acc.username}"


def status_path(flavor: str, acc: Account, st: Status) -> str:
    if flavor == "truthsocial":
        return f"/@{acc.username}/posts/{st.id}"
    if flavor == "gab":
        return f"/{acc.username}/posts/{st.id}"
    if flavor == "pleroma":
        return f"/notice/{st.id}"
    return f"/@{acc.username}/{st.id}"


def account_json(acc: Account, base: str, ds: MastodonDataset) -> dict[str, Any]:
    last = ds.statuses[acc.status_ids[0]].created_at[:10] if acc.status_ids else None
    data: dict[str, Any] = {
        "id": acc.id,
        "username": acc.username,
        "acct": acc.username,
        "display_name": acc.display_name,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "group": False,
        "created_at": acc.created_at[:10] + "T00:00:00.000Z",
        "note": f"<p>{html.escape(acc.note, quote=False)}</p>",
        "url": base + profile_path(ds.flavor, acc),
        "uri": f"{base}/users/{acc.username}",
        "avatar": base + acc.avatar_path,
        "avatar_static": base + acc.avatar_path,
        "header": base + acc.header_path,
        "header_static": base + acc.header_path,
        "followers_count": acc.followers_count,
        "following_count": acc.following_count,
        "statuses_count": len(acc.status_ids),
        "last_status_at": last,
        "emojis": [],
        "fields": [
            {
                "name": "Site",
                "value": f'<a href="https://{acc.username}.example" rel="me nofollow noopener '
                f'noreferrer" target="_blank">{acc.username}.example</a>',
                "verified_at": None,
            }
        ],
    }
    if acc.suspended:
        # Mastodon ≥ 3.3: the account is still returned, flagged and emptied.
        data.update(
            display_name="", note="", fields=[], emojis=[], statuses_count=0, followers_count=0,
            following_count=0, last_status_at=None, suspended=True,
            avatar=base + MISSING_AVATAR, avatar_static=base + MISSING_AVATAR,
            header=base + MISSING_HEADER, header_static=base + MISSING_HEADER,
        )
    if ds.flavor == "pleroma":
        data["pleroma"] = {"ap_id": data["uri"], "is_admin": False, "is_moderator": False,
                           "tags": [], "hide_followers": False, "hide_follows": False}
    if ds.flavor == "gab":
        data.update(is_pro=False, is_verified=False, is_donor=False, is_investor=False)
    return data


def media_json(m: Media, base: str) -> dict[str, Any]:
    return {
        "id": m.id,
        "type": m.type,
        "url": base + m.path,
        "preview_url": base + m.preview_path,
        "remote_url": None,
        "text_url": None,
        "meta": {
            "original": {"width": m.width, "height": m.height, "size": f"{m.width}x{m.height}",
                         "aspect": m.width / m.height},
            "small": {"width": 32, "height": 24, "size": "32x24", "aspect": 32 / 24},
        },
        "description": m.description,
        "blurhash": "UFBWY:8_0Jxv4mx]t8t64.%M-:IUWGWAt6M}",
    }


def status_json(st: Status, base: str, ds: MastodonDataset, nested: bool = False) -> dict[str, Any]:
    """A Status entity; ``nested`` stops quote/in_reply_to embedding from recursing forever."""
    acc = ds.accounts[st.account_id]
    flavor = ds.flavor
    reblog = ds.statuses[st.reblog_of_id] if st.reblog_of_id else None
    data: dict[str, Any] = {
        "id": st.id,
        "created_at": st.created_at,
        "in_reply_to_id": st.in_reply_to_id,
        "in_reply_to_account_id": st.in_reply_to_account_id,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": None if reblog else st.language,
        "uri": f"{base}/users/{acc.username}/statuses/{st.id}" + ("/activity" if reblog else ""),
        "url": None if reblog else base + status_path(flavor, acc, st),
        "replies_count": st.replies_count,
        "reblogs_count": st.reblogs_count,
        "favourites_count": st.favourites_count,
        "edited_at": st.edited_at,
        "content": st.content(base, ds),
        "reblog": status_json(reblog, base, ds) if reblog else None,
        "application": {"name": "Web", "website": None},
        "account": account_json(acc, base, ds),
        "media_attachments": [media_json(m, base) for m in st.media],
        "mentions": [
            {"id": a, "username": ds.accounts[a].username, "acct": ds.accounts[a].username,
             "url": f"{base}/@{ds.accounts[a].username}"}
            for a in st.mention_ids
        ],
        "tags": [{"name": t, "url": f"{base}/tags/{t}"} for t in st.tags],
        "emojis": [],
        "card": None,
        "poll": None,
        "favourited": False, "reblogged": False, "muted": False, "bookmarked": False,
        "pinned": st.pinned,
    }
    quoted = ds.statuses[st.quote_of_id] if st.quote_of_id else None
    quoted_json = status_json(quoted, base, ds, nested=True) if quoted and not nested else None
    if flavor == "mastodon":
        data["quotes_count"] = st.quotes_count
        data["quote"] = {"state": "accepted", "quoted_status": quoted_json} if quoted else None
        data["quote_approval"] = {"automatic": ["public"], "manual": [], "current_user": "denied"}
    elif flavor == "truthsocial":
        parent = ds.statuses.get(st.in_reply_to_id or "")
        data.update(
            quote_id=st.quote_of_id, quote=quoted_json, group=None, sponsored=False,
            in_reply_to=status_json(parent, base, ds, nested=True) if parent and not nested else None,
        )
        data = {k: data[k] for k in TRUTH_KEYS}
    elif flavor == "gab":
        data.update(quote_of_id=st.quote_of_id, quote=quoted_json, group=None,
                    reactions_counts={}, revised_at=st.edited_at)
    elif flavor == "pleroma":
        text = plain_text(st, ds) if st.text else ""
        parent = ds.statuses.get(st.in_reply_to_id or "")
        data["pleroma"] = {
            "content": {"text/plain": text},
            "spoiler_text": {"text/plain": ""},
            "conversation_id": int(st.id.encode().hex()[:8], 16),
            "direct_conversation_id": None,
            "emoji_reactions": [],
            "expires_at": None,
            "in_reply_to_account_acct": ds.accounts[parent.account_id].username if parent else None,
            "local": True,
            "parent_visible": bool(parent),
            "pinned_at": st.created_at if st.pinned else None,
            "thread_muted": False,
            "quote_id": st.quote_of_id,
        }
        data["quote"] = quoted_json
    return data


def history_json(st: Status, base: str, ds: MastodonDataset) -> list[dict[str, Any]]:
    """StatusEdit list, oldest first; a never-edited post has one entry (its current text)."""
    from tests.emulators.dataset import render_html

    versions = st.versions or [(st.created_at, st.text)]
    acc = account_json(ds.accounts[st.account_id], base, ds)
    return [
        {
            "content": render_html(text, st.tags, st.mention_ids, st.link, base, ds),
            "spoiler_text": "",
            "sensitive": False,
            "created_at": created,
            "account": acc,
            "media_attachments": [media_json(m, base) for m in st.media],
            "emojis": [],
        }
        for created, text in versions
    ]


def shell_html(
    base: str, title: str, description: str, canonical: str, api: str,
    image: str | None = None, alternate: str | None = None,
) -> str:
    """A Mastodon-4-style JS shell: OG tags for crawlers, content fetched from the API."""
    e = html.escape
    og_image = f'<meta property="og:image" content="{e(image)}">' if image else ""
    alt = (f'<link rel="alternate" type="application/activity+json" href="{e(alternate)}">'
           if alternate else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(title)}</title>
<meta property="og:title" content="{e(title)}">
<meta property="og:description" content="{e(description)}">
<meta property="og:url" content="{e(canonical)}">{og_image}
<meta property="og:type" content="article">
<link rel="canonical" href="{e(canonical)}">{alt}
</head><body><div id="mastodon" data-api="{e(api)}">Loading…</div>
<noscript>To use this web application, please enable JavaScript.</noscript>
<script>
fetch(document.getElementById("mastodon").dataset.api).then(r => r.json()).then(d => {{
  const items = Array.isArray(d) ? d : [d];
  const root = document.getElementById("mastodon");
  root.innerHTML = "";
  for (const s of items) {{
    const el = document.createElement("article");
    el.className = "status";
    el.innerHTML = (s.content || s.note || "") + (s.media_attachments || [])
      .map(m => '<img src="' + m.preview_url + '" alt="">').join("");
    root.appendChild(el);
  }}
}});
</script></body></html>"""
