"""The baseline: a bare Scrapy spider that fetches what snapcrawl fetches and does nothing else.

It starts from the same URL, follows the same links (``<a>``/``<area>`` hrefs inside the
site, tracking parameters removed so ``?from=related`` variants are fetched once, exactly as
snapcrawl's spider canonicalises them), and yields no items: no parsing beyond link
extraction, no pipelines, no exports, no snapcrawl code.  Scrapy's own defaults apply, plus
the politeness-off settings the benchmark gives both crawlers.

Run by ``benchmarks/run.py`` as its own process, outside the snapcrawl project (no
``scrapy.cfg`` lookup), so that nothing of snapcrawl's settings leaks in::

    python benchmarks/bare_spider.py http://127.0.0.1:PORT/ -s CONCURRENT_REQUESTS=16
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Request, Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from w3lib.url import url_query_cleaner

# The tracking parameters the benchmark site puts on links (see snapcrawl.processors.DEFAULT_TRACKING_PARAMS).
TRACKING = ("from", "utm_source", "utm_medium", "utm_campaign", "spm")


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, start_url: str, items: int = 0, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_url = start_url
        self.items = items
        self.allowed_domains = [urlsplit(start_url).hostname or ""]
        self.link_extractor = LinkExtractor(tags=("a", "area"), attrs=("href",), unique=True, canonicalize=False)

    async def start(self) -> AsyncIterator[Request]:
        yield Request(self.start_url, callback=self.parse)

    def parse(self, response: Response) -> Iterator[Request | dict[str, Any]]:
        if not isinstance(response, TextResponse):
            return
        # --items N (an experiment, off in the benchmark): N small records per page, to price
        # Scrapy's own per-item machinery (item pipeline, signals, feed export) without any parsing
        for i in range(self.items):
            yield {"type": "link", "from_url": response.url, "position": i, "url": response.url, "title": None}
        for link in self.link_extractor.extract_links(response):
            yield Request(url_query_cleaner(link.url, TRACKING, remove=True), callback=self.parse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start_url")
    parser.add_argument("--items", type=int, default=0, help="experiment: yield N dummy records per page (default 0)")
    parser.add_argument(
        "-s",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Scrapy setting, as for 'scrapy crawl' (repeatable)",
    )
    args = parser.parse_args(argv)
    settings: dict[str, Any] = {"TELNETCONSOLE_ENABLED": False, "LOG_LEVEL": "INFO"}
    for item in args.settings:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-s {item!r}: expected NAME=VALUE")
        settings[name] = value
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, start_url=args.start_url, items=args.items)
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    return 0 if stats.get("finish_reason") == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
