"""Keep the default log level readable: dropped items are summarised, never dumped whole."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import logformatter
from scrapy.http import Response
from scrapy.spiders import Spider
from twisted.python.failure import Failure


class QuietLogFormatter(logformatter.LogFormatter):
    def dropped(
        self, item: Any, exception: BaseException, response: Response | Failure | None, spider: Spider
    ) -> logformatter.LogFormatterResult:
        url = getattr(item, "url", None) or getattr(item, "from_url", None)
        return {
            "level": logging.DEBUG,
            "msg": "Dropped %(kind)s %(url)s: %(reason)s",
            "args": {"kind": type(item).__name__, "url": url, "reason": exception},
        }

    def item_error(
        self, item: Any, exception: BaseException, response: Response | Failure | None, spider: Spider
    ) -> logformatter.LogFormatterResult:
        url = getattr(item, "url", None) or getattr(item, "from_url", None)
        return {
            "level": logging.ERROR,
            "msg": "Error processing %(kind)s %(url)s",
            "args": {"kind": type(item).__name__, "url": url},
        }
