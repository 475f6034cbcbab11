"""Scrapy settings for snapcrawl. Short on purpose: derived settings come from snapcrawl.addon.

Every snapcrawl knob is a ``SNAPCRAWL_*`` setting (see the README's settings table);
secrets (e.g. a Redis URL with a password) come from the environment.
"""

import os

BOT_NAME = "snapcrawl"
SPIDER_MODULES = ["snapcrawl.spiders"]
NEWSPIDER_MODULE = "snapcrawl.spiders"
COMMANDS_MODULE = "snapcrawl.commands"
ADDONS = {"snapcrawl.addon.SnapcrawlAddon": 0}
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
LOG_FORMATTER = "snapcrawl.logformatter.QuietLogFormatter"

# Politeness by default (README: "Politeness"); profiles may override per domain.
ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.0
DOWNLOAD_TIMEOUT = 30
RETRY_TIMES = 3
DEPTH_LIMIT = 10
# Size limits: a page over 10 MiB (or a body unpacking past it) is cut, not loaded.
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024

REQUEST_FINGERPRINTER_CLASS = "snapcrawl.fingerprint.CanonicalRequestFingerprinter"
FEED_URI_PARAMS = "snapcrawl.run.feed_uri_params"
FEED_EXPORT_ENCODING = "utf-8"

DOWNLOADER_MIDDLEWARES = {
    "snapcrawl.middlewares.encoding.EncodingMiddleware": 950,
}
ITEM_PIPELINES = {
    "snapcrawl.pipelines.dedup.DedupPipeline": 300,
    "snapcrawl.pipelines.validate.ValidationPipeline": 900,
}
EXTENSIONS = {
    "scrapy.extensions.logstats.LogStats": None,  # replaced by the progress line
    "snapcrawl.extensions.progress.ProgressLine": 500,
    "snapcrawl.extensions.report.RunReport": 600,
    "snapcrawl.extensions.publish.RunPublisher": 700,
}

SNAPCRAWL_EXPORT_URI = os.environ.get("SNAPCRAWL_EXPORT_URI", "exports")
SNAPCRAWL_STATE_PATH = os.environ.get("SNAPCRAWL_STATE_PATH", ".snapcrawl/state.sqlite")
SNAPCRAWL_REDIS_URL = os.environ.get("SNAPCRAWL_REDIS_URL", "")
