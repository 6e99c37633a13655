"""SURT keys: the reference vectors of internetarchive/surt (tests/test_surt.py), plus a
differential check against that package and cdxj-indexer when they happen to be installed."""

from __future__ import annotations

import random
import string
from io import BytesIO

import pytest

from storage.surt import request_body_query, surt, urlkey_for_request

# (input, expected) from internetarchive/surt tests/test_surt.py (test_surt) and the
# canonicalizer tests it ports from archive-commons, rendered through surt().
REFERENCE_VECTORS = [
    (None, "-"),
    ("", "-"),
    ("filedesc:foo.arc.gz", "filedesc:foo.arc.gz"),
    ("filedesc:/foo.arc.gz", "filedesc:/foo.arc.gz"),
    ("filedesc://foo.arc.gz", "filedesc://foo.arc.gz"),
    ("warcinfo:foo.warc.gz", "warcinfo:foo.warc.gz"),
    ("dns:alexa.com", "dns:alexa.com"),
    ("dns:archive.org", "dns:archive.org"),
    ("mailto:foo@example.com", "mailto:foo@example.com"),
    ("http://www.archive.org/", "org,archive)/"),
    ("http://archive.org/", "org,archive)/"),
    ("http://archive.org/goo/", "org,archive)/goo"),
    ("http://archive.org/goo/?", "org,archive)/goo"),
    ("http://archive.org/goo/?b&a", "org,archive)/goo?a&b"),
    ("http://archive.org/goo/?a=2&b&a=1", "org,archive)/goo?a=1&a=2&b"),
    (
        "http://archive.org/index.php?PHPSESSID=0123456789abcdefghijklemopqrstuv&action=profile;u=4221",
        "org,archive)/index.php?action=profile;u=4221",
    ),
    ("whois://whois.isoc.org.il/shaveh.co.il", "il,org,isoc,whois)/shaveh.co.il"),
    (
        "http://visit.webhosting.yahoo.com/visit.gif?&r=http%3A//web.archive.org/web/20090517140029/"
        "http%3A//anthonystewarthead.electric-chi.com/&b=Netscape%205.0%20%28Windows%3B%20en-US%29"
        "&s=1366x768&o=Win32&c=24&j=true&v=1.2",
        "com,yahoo,webhosting,visit)/visit.gif?&b=netscape%205.0%20(windows;%20en-us)&c=24&j=true"
        "&o=win32&r=http://web.archive.org/web/20090517140029/http://anthonystewarthead.electric-chi.com/"
        "&s=1366x768&v=1.2",
    ),
    # Google canonicalizer: percent-encoding, dot segments, IP and IDN hosts, whitespace
    ("http://host/%25%32%35", "host)/%25"),
    ("http://host/%25%32%35%25%32%35", "host)/%25%25"),
    ("http://host/%2525252525252525", "host)/%25"),
    ("http://host/asdf%25%32%35asd", "host)/asdf%25asd"),
    ("http://host/%%%25%32%35asd%%", "host)/%25%25%25asd%25%25"),
    (
        "http://%31%36%38%2e%31%38%38%2e%39%39%2e%32%36/%2E%73%65%63%75%72%65/%77%77%77%2E%65%62%61%79%2E%63%6F%6D/",
        "26,99,188,168)/.secure/www.ebay.com",
    ),
    (
        "http://host%23.com/%257Ea%2521b%2540c%2523d%2524e%25f%255E00%252611%252A22%252833%252944_55%252B",
        "com,host%23)/~a!b@c%23d$e%25f^00&11*22(33)44_55+",
    ),
    ("http://3279880203/blah", "11,0,127,195)/blah"),
    ("http://www.google.com/blah/..", "com,google)/"),
    ("www.google.com/", "com,google)/"),
    ("www.google.com", "com,google)/"),
    ("http://www.evil.com/blah#frag", "com,evil)/blah"),
    ("http://www.GOOgle.com/", "com,google)/"),
    ("http://www.google.com.../", "com,google)/"),
    ("http://www.google.com/foo\tbar\rbaz\n2", "com,google)/foobarbaz2"),
    ("http://www.google.com/q?", "com,google)/q"),
    ("http://www.google.com/q?r?", "com,google)/q?r?"),
    ("http://evil.com/foo#bar#baz", "com,evil)/foo"),
    ("http://evil.com/foo;", "com,evil)/foo;"),
    ("http://\u0001\u0080.com/", "com,%01%c2%80)/"),
    ("B\xfccher.ch:8080", "ch,xn--bcher-kva:8080)/"),
    ("☃.com", "com,xn--n3h)/"),
    ("http://www.t%EF%BF%BD%04.82.net/", "net,82,t%ef%bf%bd%04)/"),
    ("http://www.gotaport.com:1234/", "com,gotaport:1234)/"),
    ("  http://www.google.com/  ", "com,google)/"),
    ("http:// leadingspace.com/", "com,%20leadingspace)/"),
    ("%20leadingspace.com/", "com,%20leadingspace)/"),
    ("http://host.com/ab%23cd", "com,host)/ab%23cd"),
    ("http://host.com//twoslashes?more//slashes", "com,host)/twoslashes?more//slashes"),
    ("http://017.0.0.1/", "1,0,0,15)/"),
    ("http://10.0.258/", "2,1,0,10)/"),
    ("http://1.2.3.256/", "256,3,2,1)/"),
    ("http://39024579298/", "226,210,11,22)/"),
    # IA canonicalizer: case, www\d*, default ports (per scheme), trailing slash, session ids
    ("http://ARCHIVE.ORG/", "org,archive)/"),
    ("http://www.archive.org:80/", "org,archive)/"),
    ("https://www.archive.org:80/", "org,archive:80)/"),
    ("http://www.archive.org:443/", "org,archive:443)/"),
    ("https://www.archive.org:443/", "org,archive)/"),
    ("http://www.archive.org/big/", "org,archive)/big"),
    ("http://www34.archive.org/index.html?b=a&b=b&a=b", "org,archive)/index.html?a=b&b=a&b=b"),
    ("http://www2.www2foo.com/", "com,www2foo)/"),
    ("http://www2foo.com/", "com,www2foo)/"),
    ("http://example.com/foo?X=Y", "com,example)/foo?x=y"),
    ("http://x.org/(S(4hqa0555fwsecu455xqckv45))/mileg.aspx", "org,x)/mileg.aspx"),
    ("http://x.org/(4hqa0555fwsecu455xqckv45)/mileg.aspx", "org,x)/mileg.aspx"),
    ("http://x.org/photos/36050182@N05/", "org,x)/photos/36050182@n05"),
    ("http://x.org/?jsessionid=0123456789abcdefghijklemopqrstuv&x=y", "org,x)/?x=y"),
    (
        "http://x.org/?jsessionid=0123456789abcdefghijklemopqrstuv0",
        "org,x)/?jsessionid=0123456789abcdefghijklemopqrstuv0",
    ),
    ("http://x.org/?aspsessionidABCDEFGH=ABCDEFGHIJKLMNOPQRSTUVWX&x=y", "org,x)/?x=y"),
    (
        "http://x.org/?CFID=12412453&CFTOKEN=15501799&dt=19_08_2006_22_39_28",
        "org,x)/?dt=19_08_2006_22_39_28",
    ),
    # handyurl parsing quirks
    ("http:////////////////www.vikings.com", "com,vikings)/"),
    ("http://https://order.1and1.com", "com,1and1,order)/"),
    (
        "http://mineral.galleries.com:/minerals/silicate/chabazit/chabazit.htm",
        "com,galleries,mineral)/minerals/silicate/chabazit/chabazit.htm",
    ),
    # userinfo, scheme-independence, IPs
    (
        "https://user:pw@WWW2.Example.COM:443/A/B/../c/./d/?Z=1&a=2#frag",
        "com,example)/a/c/d?a=2&z=1",
    ),
    ("http://127.0.0.1:8080/x", "1,0,0,127:8080)/x"),
    ("ftp://www.example.com/", "com,example)/"),
]

OPTION_VECTORS = [
    ("http://archive.org/goo/?a=2&b&a=1", {"trailing_comma": True}, "org,archive,)/goo?a=1&a=2&b"),
    ("dns:archive.org", {"trailing_comma": True}, "dns:archive.org"),
    ("http://www.example.com/", {"with_scheme": True}, "http://(com,example)/"),
    (
        "http://www.example.com/",
        {"with_scheme": True, "trailing_comma": True},
        "http://(com,example,)/",
    ),
    (
        "https://www.example.com/",
        {"with_scheme": True, "trailing_comma": True},
        "https://(com,example,)/",
    ),
    (
        "ftp://www.example.com/",
        {"with_scheme": True, "trailing_comma": True},
        "ftp://(com,example,)/",
    ),
    (
        "http://www.example.com/",
        {"with_scheme": True, "host_massage": False},
        "http://(com,example,www)/",
    ),
    ("http://www.example.com/", {"host_massage": False}, "com,example,www)/"),
    (
        "mailto:foo@example.com",
        {"with_scheme": True, "trailing_comma": True},
        "mailto:foo@example.com",
    ),
    ("dns:archive.org", {"with_scheme": True}, "dns:archive.org"),
    (
        "whois://whois.isoc.org.il/shaveh.co.il",
        {"with_scheme": True},
        "whois://(il,org,isoc,whois)/shaveh.co.il",
    ),
    ("warcinfo:foo.warc.gz", {"with_scheme": True, "trailing_comma": True}, "warcinfo:foo.warc.gz"),
]


@pytest.mark.parametrize(("url", "expected"), REFERENCE_VECTORS)
def test_reference_vectors(url: str | None, expected: str) -> None:
    assert surt(url) == expected


@pytest.mark.parametrize(("url", "options", "expected"), OPTION_VECTORS)
def test_reference_option_vectors(url: str, options: dict[str, bool], expected: str) -> None:
    assert surt(url, **options) == expected


def test_http_and_https_share_a_key() -> None:
    assert surt("http://example.com/a?b=1") == surt("https://www.example.com:443/a?b=1")


def test_bad_port_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"[Pp]ort"):
        surt("http://example.com:99999/")


def _random_urls(count: int) -> list[str]:
    rnd = random.Random(20261129)
    alphabet = string.ascii_letters + string.digits + "%/?&=.#:;@!$'()*+,-_~ \t[]é☃\x01"
    prefixes = [
        "http://",
        "https://",
        "",
        "HTTP://",
        "http://www.",
        "dns:",
        "ftp://",
        "http://1.2.",
        "http://u@",
    ]
    return [
        rnd.choice(prefixes) + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 25)))
        for _ in range(count)
    ]


def _outcome(func, url: str) -> str:  # type: ignore[no-untyped-def]
    try:
        return func(url)
    except ValueError as exc:
        return f"ValueError {type(exc).__name__}"


def test_same_keys_as_the_surt_package_on_random_urls() -> None:
    """Differential check against internetarchive/surt (a dev-only install, never a dependency)."""
    reference = pytest.importorskip("surt")
    mismatches = [
        (url, _outcome(reference.surt, url), _outcome(surt, url))
        for url in _random_urls(20000)
        if url.strip()  # the reference crashes on whitespace-only input; we return "-"
        and _outcome(reference.surt, url) != _outcome(surt, url)
    ]
    assert mismatches == []


FORM = b"foo=bar&dir=%2Fbaz"
JSON_BODY = b'{"a": {"b": 1, "c": [1, 2]}, "b": 2}'
MULTIPART = (
    b'--XX\r\nContent-Disposition: form-data; name="f"\r\n\r\nval ue\r\n'
    b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n\x00\x01\r\n--XX--\r\n'
)
BODIES = [
    ("application/x-www-form-urlencoded", FORM, "foo=bar&dir=/baz"),
    ("application/json", JSON_BODY, "b=1&c=1&c.2_=2&b.2_=2"),
    ("multipart/form-data; boundary=XX", MULTIPART, "f=val+ue&file=%00%01"),
    ("text/plain", b"hello", "__wb_post_data=aGVsbG8="),
    ("application/octet-stream", b"\x816", "__wb_post_data=gTY="),
    (None, b"", "__wb_post_data="),
]


@pytest.mark.parametrize(("content_type", "body", "expected"), BODIES)
def test_request_body_query(content_type: str | None, body: bytes, expected: str) -> None:
    assert request_body_query(body, content_type) == expected


def test_post_urlkey_folds_method_and_body_into_the_query() -> None:
    key, query = urlkey_for_request(
        "http://example.com/form", "post", FORM, "application/x-www-form-urlencoded"
    )
    assert key == "com,example)/form?__wb_method=post&dir=/baz&foo=bar"
    assert query == "foo=bar&dir=/baz"
    key, _ = urlkey_for_request("http://example.com/api?x=1", "PUT", b"{}", "application/json")
    assert key == "com,example)/api?__wb_method=put&x=1"


def test_get_and_other_methods_use_the_plain_key() -> None:
    assert urlkey_for_request("http://www.example.com/a/") == ("com,example)/a", None)
    assert urlkey_for_request("http://example.com/a", "DELETE") == ("com,example)/a", None)


def test_long_bodies_are_truncated() -> None:
    assert (
        len(request_body_query(b"a=" + b"x" * 10000, "application/x-www-form-urlencoded")) == 4096
    )


@pytest.mark.parametrize(("content_type", "body", "expected"), BODIES[:5])
def test_same_post_keys_as_cdxj_indexer(content_type: str, body: bytes, expected: str) -> None:
    """Differential check against cdxj-indexer's post-append (dev-only install)."""
    postquery = pytest.importorskip("cdxj_indexer.postquery")
    reference = pytest.importorskip("surt")
    url = "http://example.com/x?z=1"
    query, suffix = postquery.append_method_query(
        "POST", content_type, len(body), BytesIO(body), url
    )
    assert urlkey_for_request(url, "POST", body, content_type) == (
        reference.surt(url + suffix),
        query,
    )
    assert query == expected
