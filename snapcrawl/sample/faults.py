"""Fault injection for the sample site: a server that fails, lies and attacks, on purpose.

A crawl runs unattended against servers that return 5xx, throttle, hang, reset connections,
send less than they promise, redirect in circles or off-site, hide link traps, send huge or
bomb-compressed bodies, malformed or binary HTML and wrong charsets.  :class:`FaultPlan` says
which path gets which fault (seeded, so a plan is reproducible) and whether the fault is
*transient* (the first ``attempts`` requests fail, later ones get the real page) or
*permanent*; :class:`FaultyServer` is :class:`~snapcrawl.sample.server.SampleServer` with a
handler that applies the plan and records every fault it injected.

    plan = FaultPlan.mixed(site, fraction=0.2, seed=1, attempts=2)   # 20 % of articles, transient
    with FaultyServer(site, plan) as server:
        ...  # crawl server.url; server.injected lists (path, kind, attempt)

Command line: ``python -m snapcrawl.sample serve --faults "fraction=0.2,seed=1,attempts=2,trap"``
(see :meth:`FaultPlan.from_spec`).
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.internet.defer import Deferred

from snapcrawl.sample.render import error_html
from snapcrawl.sample.server import SampleServer, _Handler
from snapcrawl.sample.site import Page, Site


@dataclass(frozen=True)
class FaultKind:
    """One kind of misbehaviour: what the server does, and how a crawl should end up reporting it."""

    name: str
    description: str
    #: the ``errors.failed_pages[].error`` a *permanent* fault of this kind should produce;
    #: ``None`` when the page should still be exported correctly (e.g. a wrong charset)
    expected_error: str | None
    #: True when the fault can be transient (fail ``attempts`` times, then serve the page)
    retryable: bool


KINDS: dict[str, FaultKind] = {
    k.name: k
    for k in (
        FaultKind("http_500", "500 Internal Server Error", "http_500", True),
        FaultKind("http_502", "502 Bad Gateway", "http_502", True),
        FaultKind("http_503", "503 Service Unavailable", "http_503", True),
        FaultKind("http_429", "429 Too Many Requests with Retry-After", "http_429", True),
        FaultKind("slow", "no answer until after the crawler's download timeout", "timeout", True),
        FaultKind("reset", "TCP reset right after the request is read", "connection_lost", True),
        FaultKind("truncated", "Content-Length larger than the bytes sent", "truncated", True),
        FaultKind("redirect_loop", "302 to ?hop=1, which 302s back", "redirect_loop", False),
        FaultKind("redirect_offsite", "302 to another host", "offsite_redirect", False),
        FaultKind("redirect_file", "302 to file:///etc/passwd", "unsafe_redirect", False),
        FaultKind("refresh_offsite", '<meta http-equiv="refresh"> to another host', "offsite_redirect", False),
        FaultKind("huge", "50 MB body with an honest Content-Length", "too_large", False),
        FaultKind("huge_unsized", "50 MB body without Content-Length", "too_large", False),
        FaultKind("gzip_bomb", "about 1 MB of gzip that unpacks to 1 GiB", "too_large", False),
        FaultKind("deep_nesting", "the page wrapped in 5,000 nested <div>s", "empty_page", False),
        FaultKind("malformed", "unclosed tags, stray markup, upper-case tags, unquoted attributes", None, False),
        FaultKind("charset_wrong", "GB18030 bytes declared as UTF-8 (header and <meta>)", None, False),
        FaultKind("charset_missing", "no charset in the header or the page", None, False),
        FaultKind("binary", "random bytes served as text/html", "binary_content", False),
    )
}
#: faults a retrying crawler recovers from when they are transient
TRANSIENT_KINDS = tuple(k for k, v in KINDS.items() if v.retryable)
CALENDAR_PREFIX = "/calendar/"
CALENDAR_START = date(2024, 9, 24)
OFFSITE_HOST = "offsite.invalid"  # RFC 6761: never resolves


@dataclass(frozen=True)
class Fault:
    kind: str
    attempts: int | None = None  # None: permanent; k: the first k requests fail, then the page is served

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.attempts is not None and (self.attempts < 1 or not KINDS[self.kind].retryable):
            raise ValueError(f"fault {self.kind!r}: attempts={self.attempts} (only retryable kinds, >= 1)")


@dataclass
class FaultPlan:
    """Which path gets which fault, plus the sizes and delays the faults use."""

    faults: dict[str, Fault] = field(default_factory=dict)
    trap: bool = False  # serve the endless /calendar/ trap and link it from the home page
    home_links: tuple[str, ...] = ()  # extra links put on the home page (e.g. to hosts that must not be fetched)
    pages: dict[str, Page] = field(default_factory=dict)  # pages served verbatim instead of (or besides) the site's
    slow_seconds: float = 5.0
    retry_after: int = 1
    huge_bytes: int = 50 * 1024 * 1024
    bomb_bytes: int = 1024 * 1024 * 1024
    nesting: int = 5000

    @classmethod
    def mixed(
        cls,
        site: Site,
        *,
        fraction: float = 0.2,
        seed: int = 0,
        kinds: Iterable[str] = TRANSIENT_KINDS,
        attempts: int | None = None,
        trap: bool = False,
        **options: Any,
    ) -> FaultPlan:
        """Faults on ``fraction`` of the article pages, kinds spread evenly, chosen with ``seed``.

        With ``attempts`` every fault is transient (the kinds must be retryable); without it
        every fault is permanent.
        """
        kinds = list(kinds)
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction={fraction}: must be between 0 and 1")
        if not kinds:
            raise ValueError("no fault kinds given")
        rng = random.Random(seed)
        paths = site.article_paths()
        chosen = sorted(rng.sample(paths, round(fraction * len(paths))))
        order = [kinds[i % len(kinds)] for i in range(len(chosen))]
        rng.shuffle(order)
        faults = {p: Fault(k, attempts) for p, k in zip(chosen, order, strict=True)}
        return cls(faults=faults, trap=trap, **options)

    @classmethod
    def from_spec(cls, spec: str, site: Site) -> FaultPlan:
        """Parse ``key=value,...``: ``fraction`` (0.2), ``seed`` (0), ``kinds`` (``+``-separated, default the
        retryable ones), ``attempts`` (a number = transient, absent = permanent), ``trap`` (flag),
        ``slow``/``retry_after``/``nesting`` and ``PATH=KIND[*ATTEMPTS]`` for one path.
        ``mixed`` alone means ``fraction=0.2,attempts=1,trap``."""
        if spec.strip() == "mixed":
            return cls.mixed(site, fraction=0.2, attempts=1, trap=True)
        opts: dict[str, Any] = {}
        mixed: dict[str, Any] = {}
        explicit: dict[str, Fault] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            key, _, value = part.partition("=")
            try:
                if key.startswith("/"):
                    if key not in site.pages:
                        raise ValueError(f"no page at {key} on the sample site")
                    kind, _, k = value.partition("*")
                    explicit[key] = Fault(kind, int(k) if k else None)
                elif key == "trap":
                    opts["trap"] = value.lower() not in ("0", "false", "no", "off")
                elif key == "fraction":
                    mixed["fraction"] = float(value)
                elif key in ("seed", "attempts"):
                    mixed[key] = int(value)
                elif key == "slow":
                    opts["slow_seconds"] = float(value)
                elif key in ("retry_after", "nesting"):
                    opts[key] = int(value)
                elif key == "kinds":
                    mixed["kinds"] = value.split("+")
                else:
                    raise ValueError("unknown key")
            except ValueError as exc:
                raise ValueError(f"fault spec {spec!r}: bad part {part!r}: {exc}") from None
        plan = cls.mixed(site, **mixed, **opts) if mixed else cls(**opts)
        plan.faults.update(explicit)
        return plan

    def expected_error(self, path: str) -> str | None:
        """The error a crawl should report for ``path`` (``None``: exported, or no fault there)."""
        fault = self.faults.get(path)
        if fault is None or fault.attempts is not None:
            return None
        return KINDS[fault.kind].expected_error

    def by_kind(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for path, fault in sorted(self.faults.items()):
            out.setdefault(fault.kind, []).append(path)
        return out


class _FaultHandler(_Handler):
    """Applies the owner's plan before falling back to the plain sample-site handler."""

    protocol_version = "HTTP/1.0"  # one response per connection: a reset or a short body ends it

    @property
    def owner(self) -> FaultyServer:
        return self.server.owner  # type: ignore[return-value]

    def handle(self) -> None:
        # the crawler went away mid-request (killed, timed out, size limit hit): not a server error
        with contextlib.suppress(OSError):
            super().handle()

    def _respond(self, send_body: bool) -> None:
        owner = self.owner
        plan = owner.plan
        split = urlsplit(self.path)
        path = split.path
        with owner._lock:
            owner.hosts[(self.headers.get("Host") or "").rsplit(":", 1)[0].lower()] += 1
        if plan.trap and path.startswith(CALENDAR_PREFIX):
            return self._send(_calendar_page(path), send_body)
        if path in plan.pages:
            return self._send(plan.pages[path], send_body)
        fault = plan.faults.get(path)
        if fault is not None:
            attempt = owner.next_attempt(path)
            if fault.attempts is None or attempt <= fault.attempts:
                owner.record(path, fault.kind, attempt)
                return self._inject(fault.kind, path, split.query, send_body)
        if path == "/" and (plan.trap or plan.home_links):
            return self._send(_with_links(owner.site.pages["/"], plan), send_body)
        super()._respond(send_body)

    # ------------------------------------------------------------------ helpers

    def _send(self, page: Page, send_body: bool, *, length: int | None = None) -> None:
        self.owner._log(self.command, self.path, page.status)
        self.send_response(page.status)
        for name, value in page.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(page.body) if length is None else length))
        self.end_headers()
        if send_body:
            self.wfile.write(page.body)

    def _page(self, path: str) -> Page:
        return self.owner.site.pages[path]

    def _inject(self, kind: str, path: str, query: str, send_body: bool) -> None:
        plan, owner = self.owner.plan, self.owner
        if kind in ("http_500", "http_502", "http_503", "http_429"):
            status = int(kind[5:])
            headers = {"Content-Type": "text/html; charset=utf-8"}
            if status == 429:
                headers["Retry-After"] = str(plan.retry_after)
            self._send(Page(status, headers, error_html(status, self.responses[status][0]).encode()), send_body)
        elif kind == "slow":
            if not owner._stopping.wait(plan.slow_seconds):
                self._send(self._page(path), send_body)
        elif kind == "reset":
            owner._log(self.command, self.path, 0)
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif kind == "truncated":
            page = self._page(path)
            self._send(Page(200, page.headers, page.body[: len(page.body) // 2]), send_body, length=len(page.body))
        elif kind == "redirect_loop":
            target = path if "hop" in parse_qs(query) else path + "?hop=1"
            self._send(Page(302, {"Location": target}, b""), send_body)
        elif kind == "redirect_offsite":
            self._send(Page(302, {"Location": f"http://{OFFSITE_HOST}{path}"}, b""), send_body)
        elif kind == "redirect_file":
            self._send(Page(302, {"Location": "file:///etc/passwd"}, b""), send_body)
        elif kind == "refresh_offsite":
            refresh = f'<meta http-equiv="refresh" content="0; url=http://{OFFSITE_HOST}{path}">'
            html = f"<!DOCTYPE html><html><head>{refresh}</head><body><p>页面已迁移</p></body></html>"
            self._send(Page(200, {"Content-Type": "text/html; charset=utf-8"}, html.encode()), send_body)
        elif kind in ("huge", "huge_unsized"):
            self._send_huge(plan.huge_bytes, sized=kind == "huge", send_body=send_body)
        elif kind == "gzip_bomb":
            headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
            self._send(Page(200, headers, gzip_bomb(plan.bomb_bytes)), send_body)
        else:
            self._send(mangle(kind, path, self._page(path), nesting=plan.nesting), send_body)

    def _send_huge(self, size: int, *, sized: bool, send_body: bool) -> None:
        self.owner._log(self.command, self.path, 200)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if sized:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if not send_body:
            return
        chunk = (b"<p>" + b"x" * 1017 + b"</p>\n") * 64  # 64 KiB of HTML
        sent = 0
        while sent < size:
            piece = chunk[: size - sent]
            self.wfile.write(piece)
            sent += len(piece)


class FaultyServer(SampleServer):
    """The sample site served through a :class:`FaultPlan`.

    ``injected`` lists ``(path, kind, attempt)`` for every fault served (attempt is 1-based and
    counts every request for the path, so a transient fault with ``attempts=2`` shows attempts 1
    and 2); ``attempts`` counts requests per faulty path and ``attempt_times`` says when they came;
    ``hosts`` counts requests by the host name they were sent for (the ``Host`` header).
    """

    def __init__(self, site: Site, plan: FaultPlan | None = None, **kwargs: Any) -> None:
        self.plan = plan or FaultPlan()
        self.attempts: Counter[str] = Counter()
        self.attempt_times: dict[str, list[float]] = {}  # time.monotonic() of each request to a faulty path
        self.hosts: Counter[str] = Counter()  # Host headers seen: which names the crawler connected for
        self._injected: list[tuple[str, str, int]] = []
        self._stopping = threading.Event()
        if any(f.kind == "gzip_bomb" for f in self.plan.faults.values()):
            gzip_bomb(self.plan.bomb_bytes)  # built now (a few seconds), not while a crawler waits for it
        super().__init__(site, **kwargs)

    handler_class = _FaultHandler

    @property
    def injected(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._injected)

    def injected_counts(self) -> Counter[str]:
        return Counter(kind for _, kind, _ in self.injected)

    def next_attempt(self, path: str) -> int:
        with self._lock:
            self.attempts[path] += 1
            self.attempt_times.setdefault(path, []).append(time.monotonic())
            return self.attempts[path]

    def record(self, path: str, kind: str, attempt: int) -> None:
        with self._lock:
            self._injected.append((path, kind, attempt))

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a "slow" fault
        super().stop()

    def __enter__(self) -> FaultyServer:
        return self


# ---------------------------------------------------------------------- page mutations

_CHARSET_META = re.compile(rb'<meta charset="[^"]*">\s*', re.I)


def _text_of(page: Page) -> str:
    m = re.search(r"charset=([\w-]+)", page.headers.get("Content-Type", ""))
    enc = m.group(1) if m else None
    if enc is None:
        meta = re.search(rb'<meta charset="([^"]+)"', page.body)
        enc = meta.group(1).decode() if meta else "gbk"
    return page.body.decode(enc)


def mangle(kind: str, path: str, page: Page, *, nesting: int = 5000) -> Page:
    """The page's bytes and headers changed the way fault ``kind`` says (content faults only)."""
    headers = {k: v for k, v in page.headers.items() if k not in ("ETag", "Last-Modified")}
    if kind == "deep_nesting":
        body = page.body.replace(b"<body>", b"<body>" + b"<div>" * nesting, 1)
        body = body.replace(b"</body>", b"</div>" * nesting + b"</body>", 1)
        return Page(200, headers, body)
    if kind == "malformed":
        html = _text_of(page)
        html = re.sub(r"</(p|li)>", "", html)  # end tags HTML lets a page leave out
        html = html.replace("</body>", "").replace("</html>", "")  # the document just stops
        html = html.replace('<div class="footer">', "<DIV class=footer><b><span>< 3 >> </i>", 1)
        html = re.sub(r'class="(\w+)"', r"class=\1 class=\1", html)  # unquoted, duplicated attributes
        html = html.replace("<head>", "<HEAD><!-- unterminated <!-- comment --> <meta name=x content='a\"b'>", 1)
        charset = re.search(r"charset=([\w-]+)", page.headers.get("Content-Type", ""))
        return Page(200, headers, html.encode(charset.group(1) if charset else "utf-8"))
    if kind == "charset_wrong":
        body = _CHARSET_META.sub(b'<meta charset="utf-8">\n', _text_of(page).encode("gb18030"), count=1)
        return Page(200, {**headers, "Content-Type": "text/html; charset=utf-8"}, body)
    if kind == "charset_missing":
        body = _CHARSET_META.sub(b"", _text_of(page).encode("utf-8"), count=1)
        return Page(200, {**headers, "Content-Type": "text/html"}, body)
    if kind == "binary":
        return Page(200, {"Content-Type": "text/html; charset=utf-8"}, random.Random(path).randbytes(20_000))
    raise ValueError(f"fault {kind!r} is not a content fault")


@lru_cache(maxsize=2)
def gzip_bomb(size: int) -> bytes:
    """``size`` bytes of spaces, gzip-compressed (about 1/1000 of ``size``); built once per size."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: gzip container
    block = b" " * (1 << 20)
    parts = [comp.compress(b"<html><body><p>")]
    parts += [comp.compress(block[: min(len(block), size - i)]) for i in range(0, size, len(block))]
    parts.append(comp.flush())
    return b"".join(parts)


def _calendar_page(path: str) -> Page:
    """A day page that links to the next day, the next month and the previous year: no end."""
    m = re.fullmatch(r"/calendar/(\d{4})/(\d{2})/(\d{2})", path.rstrip("/"))
    try:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
    except ValueError:
        day = None
    if day is None:
        return Page(404, {"Content-Type": "text/html; charset=utf-8"}, error_html(404, "Not Found").encode())
    links = [day + timedelta(days=1), day + timedelta(days=31), day - timedelta(days=365)]
    items = "".join(f'<li><a href="{_cal_path(d)}">{d.isoformat()} 快照归档</a></li>' for d in links)
    html = (
        f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{day.isoformat()} 快照归档</title>'
        f'</head><body><h2>{day.year}年{day.month}月{day.day}日 快照归档</h2><ul class="calendar">{items}</ul>'
        "</body></html>"
    )
    return Page(200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())


def _cal_path(d: date) -> str:
    return f"{CALENDAR_PREFIX}{d.year:04d}/{d.month:02d}/{d.day:02d}"


def _with_links(home: Page, plan: FaultPlan) -> Page:
    hrefs = ([_cal_path(CALENDAR_START)] if plan.trap else []) + list(plan.home_links)
    links = "".join(f'<p><a href="{escape(h)}">往日快照</a></p>' for h in hrefs)
    headers = {k: v for k, v in home.headers.items() if k not in ("ETag", "Last-Modified")}
    return Page(home.status, headers, home.body.replace(b"</body>", (links + "</body>").encode(), 1))


class HostsResolver(CachingThreadedResolver):
    """Scrapy's DNS resolver with fixed answers for a few names: an ``/etc/hosts`` for tests.

    ``-s TWISTED_DNS_RESOLVER=snapcrawl.sample.faults.HostsResolver -s
    SNAPCRAWL_SAMPLE_HOSTS=site.test=127.0.0.1,cdn.site.test=127.0.0.1`` lets a crawl reach the
    sample server under made-up names, e.g. to check that an in-scope host resolving to a private
    address is refused.  Other names resolve as usual.
    """

    def __init__(self, reactor: Any, cache_size: int, timeout: float, hosts: dict[str, str]) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.hosts = hosts

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> HostsResolver:
        s = crawler.settings
        raw = s.get("SNAPCRAWL_SAMPLE_HOSTS") or ""
        pairs = raw.items() if isinstance(raw, dict) else (p.split("=", 1) for p in str(raw).split(",") if p.strip())
        hosts = {name.strip().lower(): ip.strip() for name, ip in pairs}
        cache = s.getint("DNSCACHE_SIZE") if s.getbool("DNSCACHE_ENABLED") else 0
        return cls(reactor, cache, s.getfloat("DNS_TIMEOUT"), hosts)

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        ip = self.hosts.get(name.lower())
        return defer.succeed(ip) if ip is not None else super().getHostByName(name, timeout)


def describe(plan: FaultPlan) -> str:
    """One line per fault kind: how many paths, transient or permanent."""
    groups = Counter((f.kind, f.attempts) for f in plan.faults.values())
    lines = [
        f"{kind}: {n} page(s), " + (f"transient (fails {k}x, then serves the page)" if k else "permanent")
        for (kind, k), n in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0))
    ]
    if plan.trap:
        lines.append(f"trap: {CALENDAR_PREFIX} linked from /")
    return "\n".join(lines) or "no faults"


__all__ = [
    "KINDS",
    "TRANSIENT_KINDS",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultyServer",
    "HostsResolver",
    "describe",
    "gzip_bomb",
    "mangle",
]
