"""Retries that wait: exponential backoff with jitter between attempts, and names for final failures.

Scrapy's :class:`~scrapy.downloadermiddlewares.retry.RetryMiddleware` decides *whether* to retry
(``RETRY_TIMES``, ``RETRY_HTTP_CODES``, ``RETRY_EXCEPTIONS``) but sends the retry straight back
out, so a server that is down for a minute burns every attempt in a second.
:class:`RetryBackoffMiddleware` delays each retried request by ``base * 2**(n-1)`` seconds
(n = the retry number), capped, with "equal jitter" (half fixed, half random) so many pages
failing together do not come back together.  A response that carried ``Retry-After`` is left
to the politeness middleware, which honours the server's own figure; backoff is the fallback
when the server names none.

:func:`describe_failure` turns a failed download into the stable error name that
``report.json`` lists under ``errors.failed_pages`` (``timeout``, ``connection_lost``,
``too_large`` ...), so operators see what went wrong rather than a Twisted class name.
"""

from __future__ import annotations

import logging
import random

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
    ResponseDataLossError,
)
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.spiders import Spider
from scrapy.utils.asyncio import sleep
from twisted.internet import error as txerror
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed

from snapcrawl.middlewares.politeness import parse_retry_after
from snapcrawl.middlewares.safety import report_section

logger = logging.getLogger(__name__)

RETRY_AFTER_META = "snapcrawl_retry_after"  # the Retry-After value of the response that caused this retry
_BACKED_OFF_META = "snapcrawl_backed_off"  # retry number already waited for (redirect hops copy meta)
RETRY_AFTER_MIDDLEWARE = "snapcrawl.middlewares.politeness.RetryAfterMiddleware"


class RetryBackoffMiddleware:
    """Sleeps before a retried request goes out; see the module docstring."""

    def __init__(self, crawler: Crawler, base: float, cap: float, seed: int | None = None) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.base = base
        self.cap = cap
        # the answers whose Retry-After the politeness middleware honours (none when it is off)
        s = crawler.settings
        politeness = s.getwithbase("DOWNLOADER_MIDDLEWARES").get(RETRY_AFTER_MIDDLEWARE) is not None
        self.retry_after_codes = (
            frozenset(int(c) for c in s.getlist("SNAPCRAWL_RETRY_AFTER_CODES", [429, 503]))
            if politeness and s.getfloat("SNAPCRAWL_RETRY_AFTER_MAX", 120.0) > 0
            else frozenset()
        )
        self.rng = random.Random(seed)
        self.waits = 0
        self.waited = 0.0
        self.deferred = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryBackoffMiddleware:
        s = crawler.settings
        if not s.getbool("RETRY_ENABLED") or not s.getbool("SNAPCRAWL_RETRY_BACKOFF", True):
            raise NotConfigured("retries or SNAPCRAWL_RETRY_BACKOFF are off")
        base = s.getfloat("SNAPCRAWL_RETRY_BACKOFF_BASE", 1.0)
        cap = s.getfloat("SNAPCRAWL_RETRY_BACKOFF_MAX", 30.0)
        if base <= 0:
            raise NotConfigured("SNAPCRAWL_RETRY_BACKOFF_BASE is 0")
        if cap < base:
            raise ValueError(
                f"setting SNAPCRAWL_RETRY_BACKOFF_MAX={cap}: must be >= SNAPCRAWL_RETRY_BACKOFF_BASE={base}"
            )
        mw = cls(crawler, base, cap)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based): equal jitter on a capped exponential."""
        d = min(self.cap, self.base * 2 ** (retry_number - 1))
        return d / 2 + self.rng.uniform(0, d / 2)

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        n = int(request.meta.get("retry_times", 0))
        if n <= 0 or request.meta.get(_BACKED_OFF_META) == n:
            return
        request.meta[_BACKED_OFF_META] = n
        if request.meta.get(RETRY_AFTER_META):
            self.deferred += 1  # the server said when; the politeness middleware waits for that
            self._inc("snapcrawl/retry/backoff_deferred_to_retry_after")
            return
        wait = self.delay(n)
        self.waits += 1
        self.waited += wait
        self._inc("snapcrawl/retry/backoff_count")
        logger.debug("backing off %.2fs before retry %d of %s", wait, n, request.url)
        await sleep(wait)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        # runs before RetryMiddleware's process_response, whose retry copies this meta
        value = response.headers.get(b"Retry-After") if response.status in self.retry_after_codes else None
        honoured = value is not None and parse_retry_after(value) is not None
        request.meta[RETRY_AFTER_META] = value.decode("latin-1") if value is not None and honoured else None
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Spider | None = None) -> None:
        request.meta[RETRY_AFTER_META] = None

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)

    def spider_closed(self, spider: Spider) -> None:
        s = self.stats.get_stats() if self.stats is not None else {}
        reasons = {
            k.rsplit("/", 1)[1].rsplit(".", 1)[-1]: v for k, v in s.items() if k.startswith("retry/reason_count/")
        }
        report_section(
            self.crawler,
            "retries",
            {
                "retried": int(s.get("retry/count", 0)),
                "gave_up": int(s.get("retry/max_reached", 0)),
                "by_reason": dict(sorted(reasons.items())),
                "backoff_waits": self.waits,
                "backoff_seconds": round(self.waited, 3),
                "left_to_retry_after": self.deferred,
            },
        )


# ---------------------------------------------------------------------- failure names


def describe_failure(failure: Failure, request: Request | None = None) -> tuple[str, str]:
    """``(kind, message)`` for a request's final failure, as ``report.json`` lists it.

    My own refusals (:mod:`snapcrawl.middlewares.safety`) carry their kind; Scrapy's and
    Twisted's exceptions are mapped to a short stable name; anything else keeps its class name.
    """
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        return f"http_{status}", f"HTTP {status}"
    kind = getattr(exc, "snapcrawl_kind", None)
    message = str(exc) or type(exc).__name__
    if kind:
        return str(kind), message
    if isinstance(exc, DownloadTimeoutError | txerror.TimeoutError):
        return "timeout", message
    if isinstance(exc, ResponseDataLossError):
        return "truncated", "response body shorter than its Content-Length (connection closed early)"
    if isinstance(exc, DownloadCancelledError):
        if not str(exc):  # the size check while streaming cancels without a message
            limit = request.meta.get("download_maxsize") if request is not None else None
            message = f"response body grew past {f'{limit} bytes' if limit else 'DOWNLOAD_MAXSIZE'} and was cut off"
        return "too_large", message
    if isinstance(exc, IgnoreRequest):
        cause = exc.__cause__
        if type(cause).__name__ == "_DecompressionMaxSizeExceeded" or "DOWNLOAD_MAXSIZE" in message:
            return "too_large", message
        if message == "max redirections reached":
            return "too_many_redirects", message
        return "IgnoreRequest", message  # a component's deliberate skip (report.json: not an error)
    if isinstance(exc, CannotResolveHostError | txerror.DNSLookupError):
        return "dns_error", message
    if isinstance(exc, DownloadConnectionRefusedError | txerror.ConnectionRefusedError):
        return "connection_refused", message
    if isinstance(exc, DownloadFailedError | ResponseFailed | txerror.ConnectionLost | txerror.ConnectionDone):
        reasons = getattr(exc.__cause__, "reasons", None) or getattr(exc, "reasons", None) or []
        names = sorted({type(getattr(r, "value", r)).__name__ for r in reasons})
        return "connection_lost", "connection closed before a complete response" + (
            f" ({', '.join(names)})" if names else ""
        )
    return type(exc).__name__, message


__all__ = ["RETRY_AFTER_META", "RetryBackoffMiddleware", "describe_failure"]
