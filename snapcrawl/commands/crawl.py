"""``scrapy crawl`` with snapcrawl's exit codes, one-line errors for bad input and a quiet log.

Exit codes: 0 the run finished and every monitor passed; 1 a monitor failed, the run did not
finish (cancelled, closed by a limit, crashed) or its exports could not be published; 2 bad
arguments or settings (nothing was crawled); an error that carries its own ``exit_code``
(e.g. 3, the job is already running) exits with that. Cron and scrapyd see the code; the
reason is in the log's summary and in report.json (``monitors``).

At the default log level Scrapy's start-up inventory (versions, add-ons, middlewares,
overridden settings), the "Stored ... feed" lines (they name the temporary folder) and the
stats dump are logged at DEBUG instead of INFO: the progress line and the run summary say
what an operator needs, and ``-L DEBUG`` (or report.json's ``scrapy_stats``) shows the rest.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.crawler import Crawler
from scrapy.exceptions import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: (logger, message start) of INFO records that are inventory, not news: shown at DEBUG
QUIET_AT_INFO: dict[str, tuple[str, ...]] = {
    "scrapy.utils.log": ("Versions:",),
    "scrapy.addons": ("Enabled addons",),
    "scrapy.middleware": ("Enabled ",),
    "scrapy.crawler": ("Overridden settings",),
    "scrapy.statscollectors": ("Dumping Scrapy stats",),
    "scrapy.extensions.feedexport": ("Stored ",),
    "scrapy-playwright": ("Starting download handler", "Closing download handler"),
}


class DemoteToDebug(logging.Filter):
    """Re-levels matching records to DEBUG, so the handler's level decides (shown with -L DEBUG).

    Matches INFO records starting with one of ``prefixes``, and Scrapy's WARNING "Disabled
    snapcrawl.X: reason": a snapcrawl component switched off by its setting (progress line
    at 0, no JOBDIR for the journal, ...) is the configuration working, not a warning.
    A logger filter, not a handler filter: Scrapy replaces its root handler when the crawler
    starts, but loggers (and their filters) stay.
    """

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.levelno == logging.INFO and str(record.msg).startswith(self.prefixes)) or _own_disabled(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _own_disabled(record: logging.LogRecord) -> bool:
    args = record.args
    return (
        record.levelno == logging.WARNING
        and str(record.msg).startswith("Disabled %(clspath)s")
        and isinstance(args, dict)
        and str(args.get("clspath", "")).startswith("snapcrawl.")
    )


def quiet_scrapy_inventory() -> None:
    """Install :class:`DemoteToDebug` on Scrapy's chatty loggers (idempotent)."""
    for name, prefixes in QUIET_AT_INFO.items():
        log = logging.getLogger(name)
        if not any(isinstance(f, DemoteToDebug) for f in log.filters):
            log.addFilter(DemoteToDebug(prefixes))


def _usage_errors() -> tuple[type[BaseException], ...]:
    from snapcrawl.addon import SettingError
    from snapcrawl.profiles import ProfileError
    from snapcrawl.spiders.snapshots import SpiderArgumentError

    return (SpiderArgumentError, ProfileError, SettingError)


class Command(ScrapyCrawl):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        quiet_scrapy_inventory()  # before Scrapy's start-up lines are logged
        super().process_options(args, opts)

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
            own_code = getattr(err, "exit_code", None)
            if isinstance(own_code, int) and own_code > 0:
                print(f"snapcrawl: error: {err}", file=sys.stderr)
                self.exitcode = own_code
                return
            print(f"snapcrawl: error: the crawl could not start: {type(err).__name__}: {err}", file=sys.stderr)
            self.exitcode = EXIT_FAILED
            return
        self.exitcode = exit_code_for(crawler)


def exit_code_for(crawler: Crawler | Any) -> int:
    """1 when a monitor failed, publishing failed, or (monitors off) the run did not finish."""
    if getattr(crawler, "spider", None) is None:
        return EXIT_FAILED
    stats = crawler.stats.get_stats() if crawler.stats else {}
    if stats.get("snapcrawl/monitors/failed") or stats.get("snapcrawl/publish/failed"):
        return EXIT_FAILED
    if "snapcrawl/monitors/passed" in stats:
        return EXIT_OK  # the finish_reason monitor passed: the reason was an expected one
    if stats.get("finish_reason") != "finished":
        return EXIT_FAILED
    return EXIT_OK
