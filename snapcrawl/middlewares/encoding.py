"""Decode Chinese pages right whether their charset is declared in the header, a meta tag, or nowhere."""

from __future__ import annotations

from scrapy.crawler import Crawler
from scrapy.http import HtmlResponse, Request, Response
from scrapy.spiders import Spider

from snapcrawl.processors import normalize_encoding, sniff_encoding


class EncodingMiddleware:
    """Re-labels an HTML response whose declared (or missing) charset does not fit its bytes.

    Scrapy trusts a declaration and otherwise guesses UTF-8 then cp1252, which turns
    undeclared GBK/Big5 pages into mojibake; :func:`snapcrawl.processors.sniff_encoding`
    checks the declaration and detects the rest. The rest of the stack then reads
    ``response.text`` as usual.
    """

    def __init__(self, stats: object | None = None) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EncodingMiddleware:
        return cls(crawler.stats)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        if not isinstance(response, HtmlResponse) or not response.body:
            return response
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        detected = sniff_encoding(response.body, content_type)
        current = normalize_encoding(response.encoding)
        if detected != current:
            if self.stats is not None:
                self.stats.inc_value(f"snapcrawl/encoding/relabelled/{detected}")  # type: ignore[attr-defined]
            return response.replace(encoding=detected)
        return response
