"""``scrapy crawl`` with snapcrawl's exit codes and one-line errors for bad input.

Exit codes: 0 the run finished and every monitor passed; 1 a monitor failed or the run did
not finish (cancelled, closed by a limit, crashed); 2 bad arguments or settings (nothing
was crawled). Cron and scrapyd see the code; the reason is in the log and report.json.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.crawler import Crawler
from scrapy.exceptions import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _usage_errors() -> tuple[type[BaseException], ...]:
    from snapcrawl.addon import SettingError
    from snapcrawl.profiles import ProfileError
    from snapcrawl.spiders.snapshots import SpiderArgumentError

    return (SpiderArgumentError, ProfileError, SettingError)


class Command(ScrapyCrawl):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider name, e.g. 'scrapy crawl snapshots'")
        assert self.crawler_process
        usage_errors = _usage_errors()
        try:
            crawler = self._create_crawler(args[0])
        except usage_errors as exc:
            print(f"snapcrawl: error: {exc}", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        errors: list[BaseException] = []
        pending = self.crawler_process.crawl(crawler, **opts.spargs)
        if hasattr(pending, "add_done_callback"):  # asyncio reactor: a Task
            pending.add_done_callback(lambda t: errors.append(t.exception()) if t.exception() else None)
        else:  # a Twisted Deferred
            pending.addErrback(lambda f: errors.append(f.value))  # type: ignore[attr-defined]
        self.crawler_process.start()
        for err in errors:
            if isinstance(err, usage_errors):
                print(f"snapcrawl: error: {err}", file=sys.stderr)
                self.exitcode = EXIT_USAGE
                return
            print(f"snapcrawl: error: the crawl could not start: {type(err).__name__}: {err}", file=sys.stderr)
            self.exitcode = EXIT_FAILED
            return
        self.exitcode = exit_code_for(crawler)


def exit_code_for(crawler: Crawler | Any) -> int:
    """Non-zero when the run failed a monitor, did not finish, or never started."""
    if getattr(crawler, "spider", None) is None:
        return EXIT_FAILED
    stats = crawler.stats.get_stats() if crawler.stats else {}
    if stats.get("snapcrawl/monitors/failed"):
        return EXIT_FAILED
    if stats.get("finish_reason") not in ("finished",):
        return EXIT_FAILED
    return EXIT_OK
