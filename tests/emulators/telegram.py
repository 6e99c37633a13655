"""Telegram public channel web-preview emulator (PLATFORMS.md §4): ``t.me`` pages on one port.

    with TelegramEmulator(seed=1) as emu:
        emu.base_url, emu.dataset, emu.requests, emu.faults, emu.media_ttl

Routes: ``/s/<ch>`` (20 newest, ascending; ``?before=ID`` / ``?after=ID``), ``/s/<ch>/<id>``,
``/<ch>`` (landing page), ``/<ch>/<id>`` (post page; ``?embed=1[&mode=tme]`` widget,
``?single``), ``/file/<hex>.png|.mp4`` (media, standing in for ``cdn*.telesco.pe``).

Run standalone: ``python -m tests.emulators.telegram [--port N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import re
import time

from tests.emulators._base import Emulator, Request, Response, serve_until_interrupted
from tests.emulators.faults import RateLimitState
from tests.emulators.telegram_data import (
    Channel,
    TelegramDataset,
    TgMessage,
    build_telegram_dataset,
)

PAGE_SIZE = 20
_SECRET = b"socialark-telegram-emulator"


def abbreviate(n: int) -> str:
    """Telegram's view counter: 999, 1.2K, 12.7K, 1.1M (one decimal, trailing .0 dropped)."""
    for div, suffix in ((1_000_000, "M"), (1_000, "K")):
        if n >= div:
            return f"{n / div:.1f}".rstrip("0").rstrip(".") + suffix
    return str(n)


class TelegramEmulator(Emulator):
    name = "telegram-emulator"

    def __init__(self, seed: int = 1, port: int = 0, media_ttl: float | None = None) -> None:
        super().__init__(port=port)
        self.dataset: TelegramDataset = build_telegram_dataset(seed)
        #: When set, media URLs carry ``?expires=<epoch>&token=<hmac>`` valid for this many
        #: seconds; expired or tampered URLs get 403 (signed, expiring CDN links, §4.5).
        self.media_ttl = media_ttl

    # plumbing -----------------------------------------------------------------------------
    def route(self, req: Request) -> Response:
        path = req.path
        if m := re.match(r"^/file/([0-9a-f]+\.(?:png|mp4))$", path):
            return self.media(req, "/file/" + m[1])
        if m := re.match(r"^/s/([A-Za-z0-9_]+)(?:/(\d+))?/?$", path):
            return self.preview(req, m[1], int(m[2]) if m[2] else None)
        if m := re.match(r"^/([A-Za-z0-9_]+)/(\d+)/?$", path):
            return self.post(req, m[1], int(m[2]))
        if m := re.match(r"^/([A-Za-z0-9_]+)/?$", path):
            return self.landing(req, m[1])
        return Response.html("<h1>Not Found</h1>", status=404)

    def rate_limited_response(self, req: Request) -> Response:
        # No documented headers or body shape (§4.4): a bare HTML 429.
        return Response.html("<html><body><h1>429 Too Many Requests</h1></body></html>", 429)

    def rate_limit_headers(self, state: RateLimitState) -> list[tuple[str, str]]:
        return []

    def media_url(self, req: Request, path: str) -> str:
        if self.media_ttl is None:
            return req.base + path
        expires = int(time.time() + self.media_ttl)
        return f"{req.base}{path}?expires={expires}&token={self._sign(path, expires)}"

    @staticmethod
    def _sign(path: str, expires: int) -> str:
        return hmac.new(_SECRET, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    # handlers ------------------------------------------------------------------------------
    def media(self, req: Request, path: str) -> Response:
        hit = self.dataset.files.get(path)
        if hit is None:
            return Response.html("<h1>Not Found</h1>", 404)
        if self.media_ttl is not None:
            try:
                expires = int(req.arg("expires") or "0")
            except ValueError:
                expires = 0
            token = req.arg("token") or ""
            if expires < time.time() or not hmac.compare_digest(token, self._sign(path, expires)):
                return Response.html("<h1>403 Forbidden</h1>", 403)
        return Response(body=hit[0], content_type=hit[1])

    def preview(self, req: Request, name: str, around: int | None) -> Response:
        ch = self.dataset.channel(name)
        if ch is None or ch.private:
            # No public preview: redirect to the landing page (§4.1, §4.4).
            return Response(status=302, body=b"", content_type="text/html; charset=utf-8",
                            headers=[("Location", f"{req.base}/{name}")])
        ids = ch.visible_ids
        before, after = _int(req.arg("before")), _int(req.arg("after"))
        if around is not None:
            older = [i for i in ids if i < around][-(PAGE_SIZE // 2):]
            page = older + [i for i in ids if i >= around][: PAGE_SIZE - len(older)]
        elif before is not None:
            page = [i for i in ids if i < before][-PAGE_SIZE:]
        elif after is not None:
            page = [i for i in ids if i > after][:PAGE_SIZE]
        else:
            page = ids[-PAGE_SIZE:]
        return Response.html(self._preview_html(req, ch, page))

    def landing(self, req: Request, name: str) -> Response:
        ch = self.dataset.channel(name)
        if ch is None:
            title, extra, body = f"Telegram: Contact @{name}", "", ""
        elif ch.private:
            title, extra = f"Telegram: Join Group Chat — {ch.title}", "Channel is private"
            body = f'<div class="tgme_page_title"><span dir="auto">{html.escape(ch.title)}</span></div>'
        else:
            title = f"Telegram: Contact @{ch.username}"
            extra = f"{ch.subscribers:,}".replace(",", " ") + " subscribers"
            body = (f'<div class="tgme_page_photo"><img class="tgme_page_photo_image" '
                    f'src="{self.media_url(req, ch.photo_path)}"></div>'
                    f'<div class="tgme_page_title"><span dir="auto">{html.escape(ch.title)}</span></div>'
                    f'<div class="tgme_page_description">{html.escape(ch.description)}</div>'
                    f'<div class="tgme_page_action"><a class="tgme_action_button_new" '
                    f'href="{req.base}/s/{ch.username}">Preview channel</a></div>')
        return Response.html(_page(title, f'<div class="tgme_page">{body}'
                                   f'<div class="tgme_page_extra">{extra}</div></div>'))

    def post(self, req: Request, name: str, msg_id: int) -> Response:
        ch = self.dataset.channel(name)
        msg = None
        if ch is not None and not ch.private:
            msg = ch.messages.get(ch.album_members.get(msg_id, msg_id))
        if ch is not None and ch.private:
            widget = '<div class="tgme_widget_message_error">Channel is private</div>'
        elif msg is None or ch is None:
            widget = '<div class="tgme_widget_message_error">Post not found</div>'
        else:
            widget = self._message_html(req, ch, msg)
        if req.arg("embed") is not None:  # the static widget, HTTP 200 even for errors (§4.4)
            return Response.html(_page(f"Telegram Widget {name}/{msg_id}",
                                       f'<div class="tgme_widget_message_wrap">{widget}</div>',
                                       body_class="widget_frame_base"))
        desc = html.escape(msg.text_plain) if msg else ""
        meta = (f'<meta property="og:title" content="{html.escape(ch.title) if ch else name}">'
                f'<meta property="og:description" content="{desc}">'
                f'<link rel="canonical" href="{req.base}/{name}/{msg_id}">')
        return Response.html(_page(f"Telegram: Contact @{name}", widget, head=meta))

    # rendering ------------------------------------------------------------------------------
    def _preview_html(self, req: Request, ch: Channel, page: list[int]) -> str:
        ids = ch.visible_ids
        info = (
            '<div class="tgme_channel_info"><div class="tgme_channel_info_header">'
            f'<div class="tgme_channel_info_header_title"><span dir="auto">{html.escape(ch.title)}'
            '</span></div><div class="tgme_channel_info_header_username">'
            f'<a href="{req.base}/{ch.username}">@{ch.username}</a></div></div>'
            f'<div class="tgme_channel_info_description">{html.escape(ch.description)}</div>'
            '<div class="tgme_channel_info_counters">'
            f'{_counter(abbreviate(ch.subscribers), "subscribers")}'
            f'{_counter(str(sum(len(m.photo_paths) for m in ch.messages.values())), "photos")}'
            f'{_counter(str(sum(1 for m in ch.messages.values() if m.video_path)), "videos")}'
            f'{_counter(str(sum(1 for m in ch.messages.values() if m.link_preview)), "links")}'
            '</div></div>'
        )
        parts = ['<section class="tgme_channel_history js-message_history">']
        if page and page[0] > ids[0]:
            parts.append(
                '<div class="tgme_widget_message_centered js-messages_more_wrap">'
                f'<a href="/s/{ch.username}?before={page[0]}" class="tme_messages_more '
                f'js-messages_more" data-before="{page[0]}"></a></div>')
        parts += [f'<div class="tgme_widget_message_wrap js-widget_message_wrap">'
                  f'{self._message_html(req, ch, ch.messages[i])}</div>' for i in page]
        if page and page[-1] < ids[-1]:
            parts.append(
                '<div class="tgme_widget_message_centered js-messages_more_wrap">'
                f'<a href="/s/{ch.username}?after={page[-1]}" class="tme_messages_more '
                f'js-messages_more" data-after="{page[-1]}"></a></div>')
        parts.append("</section>")
        return _page(f"{ch.title} - Telegram", info + "".join(parts))

    def _message_html(self, req: Request, ch: Channel, m: TgMessage) -> str:
        b, link = req.base, f"{req.base}/{ch.username}/{m.id}"
        classes = "tgme_widget_message text_not_supported_wrap js-widget_message"
        if m.service:
            classes += " service_message"
        out = [f'<div class="{classes}" data-post="{ch.username}/{m.id}" data-view="v{m.id}">',
               '<div class="tgme_widget_message_bubble">',
               '<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_'
               f'owner_name" href="{b}/{ch.username}"><span dir="auto">{html.escape(ch.title)}'
               '</span></a></div>']
        if m.forwarded_from:
            name, url = m.forwarded_from
            inner = (f'<a class="tgme_widget_message_forwarded_from_name" href="{url}">{name}</a>'
                     if url else f'<span class="tgme_widget_message_forwarded_from_name">{name}</span>')
            out.append('<div class="tgme_widget_message_forwarded_from accent_color">'
                       f'Forwarded from&nbsp;{inner}</div>')
        if m.reply_to_id is not None:
            parent = ch.messages.get(m.reply_to_id)
            text = parent.text_html if parent else "Deleted message"
            out.append(f'<a class="tgme_widget_message_reply" href="{b}/{ch.username}/{m.reply_to_id}">'
                       f'<div class="tgme_widget_message_author accent_color"><span dir="auto">'
                       f'{html.escape(ch.title)}</span></div>'
                       f'<div class="tgme_widget_message_text js-message_reply_text">{text}</div></a>')
        if m.photo_paths:
            grouped = len(m.photo_paths) > 1
            wrap = " grouped_media_wrap blured" if grouped else ""
            links = []
            for n, path in enumerate(m.photo_paths):
                href = f"{b}/{ch.username}/{m.album_ids[n]}?single" if grouped else link
                links.append(f'<a class="tgme_widget_message_photo_wrap{wrap} js-message_photo" '
                             f'href="{href}" style="width:400px;background-image:url(\''
                             f'{self.media_url(req, path)}\')"></a>')
            body = "".join(links)
            out.append(f'<div class="tgme_widget_message_grouped_wrap">{body}</div>' if grouped else body)
        if m.video_path and m.video_thumb_path:
            out.append(f'<a class="tgme_widget_message_video_player js-message_video_player" href="{link}">'
                       f'<i class="tgme_widget_message_video_thumb" style="background-image:url(\''
                       f'{self.media_url(req, m.video_thumb_path)}\')"></i>'
                       f'<div class="tgme_widget_message_video_wrap"><video class="tgme_widget_'
                       f'message_video js-message_video" src="{self.media_url(req, m.video_path)}" '
                       f'width="100%" height="100%"></video></div>'
                       f'<time class="message_video_duration js-message_video_duration">'
                       f'{m.video_duration}</time></a>')
        if m.text_html:
            cls = "tgme_widget_message_service_text" if m.service else "tgme_widget_message_text js-message_text"
            out.append(f'<div class="{cls}" dir="auto">{m.text_html}</div>')
        if m.link_preview:
            lp = m.link_preview
            out.append(f'<a class="tgme_widget_message_link_preview" href="{html.escape(lp.url)}">'
                       f'<i class="link_preview_image" style="background-image:url(\''
                       f'{self.media_url(req, lp.image_path)}\')"></i>'
                       f'<div class="link_preview_site_name accent_color" dir="auto">{lp.site_name}</div>'
                       f'<div class="link_preview_title" dir="auto">{html.escape(lp.title)}</div>'
                       f'<div class="link_preview_description" dir="auto">'
                       f'{html.escape(lp.description)}</div></a>')
        meta = '<span class="tgme_widget_message_meta">'
        if m.signature:
            meta += f'<span class="tgme_widget_message_from_author" dir="auto">{m.signature}</span>, '
        if m.edited:
            meta += '<span class="tgme_widget_message_edited">edited</span> '
        clock = m.date[11:16]
        meta += (f'<a class="tgme_widget_message_date" href="{link}"><time datetime="{m.date}" '
                 f'class="time">{clock}</time></a></span>')
        out.append('<div class="tgme_widget_message_footer compact js-message_footer">'
                   '<div class="tgme_widget_message_info short js-message_info">'
                   f'<span class="tgme_widget_message_views">{abbreviate(m.views)}</span>'
                   f'<span class="copyonly"> views</span>{meta}</div></div>')
        out.append("</div></div>")
        return "".join(out)

    def sample_targets(self) -> dict[str, str]:
        b = self.base_url
        big = self.dataset.channel("harbourwatch")
        assert big
        return {"preview": f"{b}/s/HarbourWatch", "older": f"{b}/s/HarbourWatch?before=60",
                "post": f"{b}/HarbourWatch/{big.visible_ids[5]}",
                "embed": f"{b}/HarbourWatch/{big.deleted_ids[0]}?embed=1&mode=tme",
                "private": f"{b}/s/secretchan", "small": f"{b}/s/tinychan"}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _counter(value: str, kind: str) -> str:
    return (f'<div class="tgme_channel_info_counter"><span class="counter_value">{value}</span> '
            f'<span class="counter_type">{kind}</span></div>')


def _page(title: str, body: str, head: str = "", body_class: str = "") -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'{head}</head><body class="{body_class}">{body}</body></html>')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Telegram web-preview emulator.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with TelegramEmulator(seed=args.seed, port=args.port) as emu:
        serve_until_interrupted(emu, "telegram")


if __name__ == "__main__":
    main()
