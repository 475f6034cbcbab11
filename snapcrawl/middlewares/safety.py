"""Safe by default: what a crawl refuses to fetch or follow, however a hostile site asks.

* :class:`NetworkSafetyMiddleware`: only ``http``/``https``, and never an address on a private,
  loopback, link-local or otherwise non-public network, judged on the address the host
  *resolves to* (so ``intranet.example.com -> 10.0.0.5``, ``2130706433`` or DNS rebinding are
  caught, not only literal IPs).  Hosts the start URLs name are exempt when they are private
  themselves (that is what the operator asked for: a local test site, an intranet crawl);
  ``SNAPCRAWL_ALLOW_PRIVATE_NETWORKS`` lifts the rule entirely.
* :class:`RedirectGuardMiddleware` / :class:`MetaRefreshGuardMiddleware`: a redirect (HTTP or
  ``<meta refresh>``) to another site, to a non-HTTP scheme, or back to a URL already in its
  own chain is not followed.  Scrapy would drop an off-site or looping redirect silently
  (the off-site filter and the dupefilter swallow it), so the page would be neither exported
  nor reported; here the original request fails with ``offsite_redirect`` /
  ``redirect_loop`` / ``unsafe_redirect`` and lands in ``report.json``.
* :class:`BinaryContentMiddleware`: a body that is plainly binary (NUL and control bytes,
  image/archive magic numbers) under a text content type fails as ``binary_content`` instead
  of being "parsed" into garbage.

Every refusal is an :class:`UnsafeRequest` (an ``IgnoreRequest``, so it is not retried) with a
``snapcrawl_kind``; the spider's errback reports it, and counts go to the ``snapcrawl/safety/*``
stats and the ``robustness.safety`` section of ``report.json``.
"""

from __future__ import annotations

import codecs
import ipaddress
import logging
import socket
from collections import Counter
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CannotResolveHostError, IgnoreRequest
from scrapy.http import HtmlResponse, Request, Response, TextResponse
from scrapy.spiders import Spider
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import get_meta_refresh
from w3lib.url import safe_url_string

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SAFE_SCHEMES = ("http", "https")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class UnsafeRequest(IgnoreRequest):
    """A request snapcrawl refuses; ``snapcrawl_kind`` is the error name ``report.json`` shows."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.snapcrawl_kind = kind


def report_section(crawler: Crawler, name: str, data: Any) -> None:
    """Add ``data`` as ``robustness.<name>`` in this run's ``report.json`` (when the report runs)."""
    report = getattr(crawler, "_snapcrawl_report", None)
    if report is not None:
        report.extra.setdefault("robustness", {})[name] = data


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, including shorthand IPv4 (``2130706433``, ``0x7f.1``)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:  # the forms inet_aton (and so every HTTP client) accepts for IPv4
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def non_public_reason(ip: IPAddress) -> str | None:
    """Why an address is off limits (``loopback``, ``private``, ``link-local``...), or None if public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return reason
    return None if ip.is_global else "not globally routable"


class NetworkSafetyMiddleware:
    """Refuses non-HTTP schemes and requests that would reach a non-public address (module docstring)."""

    def __init__(self, crawler: Crawler, allow_private: bool) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.allow_private = allow_private
        self.exempt: dict[str, str] = {}  # start-URL host -> the private address that exempted it
        self.public_start_hosts: set[str] = set()
        self.start_hosts: set[str] | None = None
        self.blocked: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NetworkSafetyMiddleware:
        mw = cls(crawler, crawler.settings.getbool("SNAPCRAWL_ALLOW_PRIVATE_NETWORKS", False))
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        parts = urlparse_cached(request)
        if parts.scheme not in SAFE_SCHEMES:
            self._refuse("unsafe_scheme", f"{request.url}: only http and https are fetched, not {parts.scheme!r}")
        host = (parts.hostname or "").lower()
        if self.allow_private or not host or host in self.exempt:
            return
        ip = literal_ip(host)
        addresses = [ip] if ip is not None else await self._resolve(host, request)
        for address in addresses:
            reason = non_public_reason(address)
            if reason is None:
                continue
            if host in self._start_hosts() and host not in self.public_start_hosts:
                self.exempt[host] = str(address)
                logger.info(
                    "start URL host %s is on a %s address (%s): allowed, as the start URLs name it",
                    host,
                    reason,
                    address,
                )
                return
            shown = host if ip is not None else f"{host} resolves to {address}"
            self._refuse(
                "private_address",
                f"{request.url}: {shown}, a {reason} address; not fetched "
                "(set SNAPCRAWL_ALLOW_PRIVATE_NETWORKS=1 to allow private networks)",
            )
        if host in self._start_hosts():
            self.public_start_hosts.add(host)  # a later answer pointing inside is a rebinding, not a choice

    async def _resolve(self, host: str, request: Request) -> list[IPAddress]:
        """The host's address through the reactor's resolver: the same (caching) resolver and answer
        the downloader connects with, so a rebinding DNS cannot answer differently between the two."""
        from twisted.internet import reactor

        core: Any = reactor  # Twisted's stubs type resolve() oddly
        try:
            answer = await maybe_deferred_to_future(core.resolve(host))
        except Exception as exc:  # DNSLookupError, timeouts: let the retry machinery treat it as DNS failure
            raise CannotResolveHostError(f"{request.url}: cannot resolve {host}: {exc}") from exc
        ip = literal_ip(str(answer))
        return [ip] if ip is not None else []

    def _start_hosts(self) -> set[str]:
        spider = self.crawler.spider
        if not (getattr(spider, "start_urls", None) or []):
            # distributed mode: the start URLs were enqueued through Redis and their hosts are the
            # spider's allowed domains (which may grow while the crawl runs), so read them each time
            return {d.lower() for d in getattr(spider, "allowed_domains", None) or []}
        if self.start_hosts is None:  # read once: the start URLs do not change during a crawl
            urls = getattr(spider, "start_urls", None) or []
            self.start_hosts = {(urlsplit(u).hostname or "").lower() for u in urls}
        return self.start_hosts

    def _refuse(self, kind: str, message: str) -> None:
        self.blocked[kind] += 1
        if self.stats is not None:
            self.stats.inc_value(f"snapcrawl/safety/{kind}")
        logger.info("refused: %s", message)  # the spider logs the failed page as a warning
        raise UnsafeRequest(kind, message)

    def spider_closed(self, spider: Spider) -> None:
        report_section(
            self.crawler,
            "network",
            {
                "allow_private_networks": self.allow_private,
                "exempt_start_hosts": dict(sorted(self.exempt.items())),
                "refused": dict(sorted(self.blocked.items())),
            },
        )


class RedirectGuardMiddleware:
    """Stops off-site, non-HTTP and looping HTTP redirects before Scrapy's RedirectMiddleware follows them.

    Sits just downloader-side of ``RedirectMiddleware`` (600), so its ``process_response`` sees the
    3xx first.
    """

    how = "redirect"

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedirectGuardMiddleware:
        mw = cls(crawler)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        if cls.how == "redirect":
            crawler.signals.connect(mw.request_dropped, signal=signals.request_dropped)
        return mw

    def target(self, request: Request, response: Response) -> str | None:
        if response.status not in REDIRECT_STATUSES or request.meta.get("dont_redirect"):
            return None
        location = response.headers.get(b"Location")
        if not location:
            return None
        loc = safe_url_string(location)
        if location.startswith(b"//"):
            loc = urlparse_cached(request).scheme + "://" + loc.lstrip("/")
        return urljoin(request.url, loc)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        url = self.target(request, response)
        if url is not None:
            self.check(request, url)
        return response

    def check(self, request: Request, url: str) -> None:
        target = Request(url)
        parts = urlparse_cached(target)
        if parts.scheme not in SAFE_SCHEMES:
            self._refuse("unsafe_redirect", f"{request.url}: {self.how} to a {parts.scheme!r} URL not followed: {url}")
        host = (parts.hostname or "").lower()
        if not self.in_scope(host):
            self._refuse("offsite_redirect", f"{request.url}: {self.how} off-site not followed: {url}")
        fingerprint = self.crawler.request_fingerprinter.fingerprint
        chain = [*request.meta.get("redirect_urls", []), request.url]
        fp = fingerprint(target)
        if any(fingerprint(Request(u)) == fp for u in chain):
            self._refuse("redirect_loop", f"{chain[0]}: {self.how} loop: {' -> '.join([*chain, url])}")

    def in_scope(self, host: str) -> bool:
        """The spider's own notion of its site (``in_scope``), else its ``allowed_domains``."""
        spider = self.crawler.spider
        in_scope = getattr(spider, "in_scope", None)
        if in_scope is not None:
            return bool(in_scope(host))
        domains = [d.lower() for d in getattr(spider, "allowed_domains", None) or []]
        return not domains or any(host == d or host.endswith("." + d) for d in domains)

    def request_dropped(self, request: Request, spider: Spider | None = None) -> None:
        """A redirect target the dupefilter already knew: the page is crawled under that URL; say so."""
        if request.meta.get("redirect_urls"):
            self.counts["to_known_url"] += 1
            if self.stats is not None:
                self.stats.inc_value("snapcrawl/redirect/to_known_url")
            logger.info("%s redirects to %s, already crawled or queued", request.meta["redirect_urls"][0], request.url)

    def _refuse(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        if self.stats is not None:
            self.stats.inc_value(f"snapcrawl/safety/{kind}")
        logger.info("refused: %s", message)  # the spider logs the failed page as a warning
        raise UnsafeRequest(kind, message)

    def spider_closed(self, spider: Spider) -> None:
        # both guards (HTTP and meta refresh) add to one "redirects" section
        report = getattr(self.crawler, "_snapcrawl_report", None)
        counts = Counter(report.extra.get("robustness", {}).get("redirects", {}) if report is not None else {})
        counts.update(self.counts)
        report_section(self.crawler, "redirects", dict(sorted(counts.items())))


class MetaRefreshGuardMiddleware(RedirectGuardMiddleware):
    """The same guard for ``<meta http-equiv="refresh">`` redirects (needs the decompressed body, so it
    sits between HttpCompressionMiddleware (590) and MetaRefreshMiddleware (580))."""

    how = "meta refresh"

    def target(self, request: Request, response: Response) -> str | None:
        s = self.crawler.settings
        if (
            not s.getbool("METAREFRESH_ENABLED")
            or request.meta.get("dont_redirect")
            or not isinstance(response, HtmlResponse)
        ):
            return None
        try:
            interval, url = get_meta_refresh(response, ignore_tags=s.getlist("METAREFRESH_IGNORE_TAGS"))
        except ValueError as exc:
            # w3lib raises on an unreadable <base href> (e.g. "http://[::1"); Scrapy's MetaRefreshMiddleware
            # would raise the same and fail the page. No refresh can be followed from such a page: let the
            # page itself through to the spider instead.
            request.meta["dont_redirect"] = True
            if self.stats is not None:
                self.stats.inc_value("snapcrawl/safety/unreadable_base_href")
            logger.warning("%s: unreadable <base href> (%s); a meta refresh there is not followed", request.url, exc)
            return None
        if not url or interval is None or interval >= s.getfloat("METAREFRESH_MAXDELAY"):
            return None
        return str(url)


_MAGIC = (b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"\x7fELF", b"BZh", b"\xfd7zXZ")
_TEXT_CONTROLS = {9, 10, 12, 13, 27}  # tab, LF, FF, CR, ESC (ISO-2022)
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def looks_binary(body: bytes, encoding: str | None = None) -> bool:
    """True when the first 4 KiB are plainly not text: a binary magic number, or 3 % or more control bytes."""
    head = body[:4096]
    if not head or head.startswith(_WIDE_BOMS) or (encoding or "").lower().startswith(("utf-16", "utf-32")):
        return False
    if head.lstrip().startswith(_MAGIC):
        return True
    controls = sum(1 for b in head if b < 32 and b not in _TEXT_CONTROLS)
    return controls >= 0.03 * len(head)


class BinaryContentMiddleware:
    """Fails a text-typed response whose body is binary (module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BinaryContentMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        if isinstance(response, TextResponse) and looks_binary(response.body, response.encoding):
            ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
            if self.stats is not None:
                self.stats.inc_value("snapcrawl/safety/binary_content")
            message = f"{request.url}: served as {ctype or 'text'} but the body is binary"
            logger.info("refused: %s", message)  # the spider logs the failed page as a warning
            raise UnsafeRequest("binary_content", message)
        return response


__all__ = [
    "BinaryContentMiddleware",
    "MetaRefreshGuardMiddleware",
    "NetworkSafetyMiddleware",
    "RedirectGuardMiddleware",
    "UnsafeRequest",
    "literal_ip",
    "looks_binary",
    "non_public_reason",
    "report_section",
]
