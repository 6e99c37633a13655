"""After a spooled download: archive it, then build the response callbacks get.

Callbacks of a spooled response (``"spooled"`` in ``response.flags``) get an empty body, with
``response.meta["archive_body_length"]`` the number of body bytes archived and ``"truncated"`` in
the flags when the body was cut at ``ARCHIVE_MAX_RECORD_SIZE``. Text a spider may parse (HTML,
JSON, XML, CSS, JavaScript, DASH/HLS manifests) up to ``ARCHIVE_SPOOL_TEXT_MAX`` bytes is read
back from the spool instead, so a large page or API reply is still parsed. An empty body drops
``Content-Encoding`` from the response headers (not from the record), so Scrapy's decompression
middleware leaves it alone. No spider's media callback reads the body (they look at the status).
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.responsetypes import responsetypes

from storage.spool import SpooledBody

BODY_LENGTH_META_KEY = "archive_body_length"
_TEXT_MARKERS = ("text/", "json", "xml", "javascript", "ecmascript", "mpegurl")


def _warc_extension(crawler: Crawler) -> Any:
    from crawler.extensions.warc import WarcCaptureExtension

    for ext in getattr(crawler.extensions, "middlewares", ()):
        if isinstance(ext, WarcCaptureExtension):
            return ext
    return None


def _parseable(response: Response) -> bool:
    ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
    return any(marker in ctype for marker in _TEXT_MARKERS)


async def archive_spooled(
    crawler: Crawler, request: Request, response: Response, body: SpooledBody
) -> Response:
    ext = _warc_extension(crawler)
    if ext is not None:
        await ext.record_spooled(request, response, body)
    request.meta[BODY_LENGTH_META_KEY] = body.length
    text_max = crawler.settings.getint("ARCHIVE_SPOOL_TEXT_MAX")
    if _parseable(response) and body.length <= text_max:
        data = body.path.read_bytes()
        cls = responsetypes.from_args(headers=response.headers, url=response.url, body=data[:5000])
        return response.replace(cls=cls, body=data)
    headers = response.headers.copy()
    headers.pop(b"Content-Encoding", None)
    return response.replace(body=b"", headers=headers)
