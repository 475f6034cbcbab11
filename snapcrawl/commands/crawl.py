"""``scrapy crawl`` with snapcrawl's exit codes and one-line errors for bad input.

Exit codes: 0 the run finished and every monitor passed; 1 a monitor failed or the run did
not finish (cancelled, closed by a limit); 2 bad arguments or settings (nothing crawled).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.exceptions import UsageError

EXIT_OK, EXIT_MONITOR, EXIT_USAGE = 0, 1, 2


class Command(ScrapyCrawl):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from snapcrawl.addon import SettingError
        from snapcrawl.profiles import ProfileError
        from snapcrawl.spiders.snapshots import SpiderArgumentError

        try:
            super().run(args, opts)
        except UsageError:
            raise
        except (SpiderArgumentError, ProfileError, SettingError) as exc:
            print(f"snapcrawl: error: {exc}", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        if self.exitcode:
            return
        self.exitcode = exit_code_for(self.crawler_process)


def exit_code_for(process: Any) -> int:
    """Non-zero when any crawler's run failed a monitor or did not finish."""
    for crawler in getattr(process, "crawlers", ()) or ():
        stats = crawler.stats.get_stats() if crawler.stats else {}
        if stats.get("snapcrawl/monitors/failed"):
            return EXIT_MONITOR
        if stats.get("finish_reason") not in (None, "finished"):
            return EXIT_MONITOR
    if getattr(process, "bootstrap_failed", False):
        return EXIT_MONITOR
    return EXIT_OK
