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
FEED_EXPORTERS = {  # an article's link records are written from the article (snapcrawl/exporters.py)
    "jsonlines": "snapcrawl.exporters.SnapshotRecordsExporter",
    "jsonl": "snapcrawl.exporters.SnapshotRecordsExporter",
    "jl": "snapcrawl.exporters.SnapshotRecordsExporter",
    "json": "snapcrawl.exporters.SnapshotRecordsJsonExporter",
}
FEED_STORAGES = {  # local feeds: torn-line repair and journal-driven flush (docs/resume.md)
    "": "snapcrawl.feedstorage.DurableFileFeedStorage",
    "file": "snapcrawl.feedstorage.DurableFileFeedStorage",
}

DOWNLOADER_MIDDLEWARES = {
    "snapcrawl.middlewares.politeness.ProfilePolitenessMiddleware": 50,  # before RobotsTxt (100)
    "snapcrawl.middlewares.safety.NetworkSafetyMiddleware": 60,  # http(s) only, no private addresses
    "snapcrawl.middlewares.backoff.RetryBackoffMiddleware": 555,  # waits before retries (docs/faults.md)
    "snapcrawl.middlewares.politeness.RetryAfterMiddleware": 560,  # sees 429/503 before Retry (550)
    "snapcrawl.middlewares.safety.MetaRefreshGuardMiddleware": 585,  # off-site/looping meta refresh
    "snapcrawl.middlewares.safety.BinaryContentMiddleware": 587,  # binary bodies under text types
    "snapcrawl.middlewares.safety.RedirectGuardMiddleware": 610,  # off-site/looping redirects
    "snapcrawl.middlewares.incremental.IncrementalMiddleware": 620,  # conditional requests (docs/dedup.md)
    "snapcrawl.middlewares.encoding.EncodingMiddleware": 950,
}
SPIDER_MIDDLEWARES = {
    "snapcrawl.extensions.journal.JournalMiddleware": 10,  # outermost: sees the callback's final output
    "snapcrawl.spidermiddlewares.UrlPatternLimitMiddleware": 950,  # link traps; counts DEPTH_LIMIT cuts
    "snapcrawl.spidermiddlewares.PageFailureMiddleware": 960,  # a callback that raised: failed page
}
ITEM_PIPELINES = {
    "snapcrawl.pipelines.dedup.DedupPipeline": 300,
    "snapcrawl.pipelines.validate.ValidationPipeline": 900,
}
EXTENSIONS = {
    "scrapy.extensions.logstats.LogStats": None,  # replaced by the progress line
    "scrapy.extensions.throttle.AutoThrottle": None,  # replaced by the per-profile one
    "snapcrawl.middlewares.politeness.ProfileAutoThrottle": 0,
    "snapcrawl.extensions.progress.ProgressLine": 500,
    "snapcrawl.extensions.report.RunReport": 600,
    "snapcrawl.monitors.RunMonitors": 650,  # spidermon checks at spider close, into report.json
    "snapcrawl.extensions.publish.RunPublisher": 700,
    "snapcrawl.extensions.journal.CrawlJournal": 800,  # JOBDIR crash safety; closes after the publisher
    "snapcrawl.extensions.lock.JobLockExtension": 900,  # released after the publisher's engine_stopped
    "snapcrawl.extensions.gctune.GcFreeze": 950,  # start-up objects out of the collector's scans
}

SNAPCRAWL_EXPORT_URI = os.environ.get("SNAPCRAWL_EXPORT_URI", "exports")
SNAPCRAWL_STATE_PATH = os.environ.get("SNAPCRAWL_STATE_PATH", ".snapcrawl/state.sqlite")
SNAPCRAWL_REDIS_URL = os.environ.get("SNAPCRAWL_REDIS_URL", "")
SNAPCRAWL_WORKER_ID = os.environ.get("SNAPCRAWL_WORKER_ID", "")  # distributed mode: names this worker's run
SNAPCRAWL_NEAR_DUP_THRESHOLD = 0.45  # tuned on tests/fixtures/neardup (docs/dedup.md)
SNAPCRAWL_DUP_POLICY = "annotate"  # or "drop"
SNAPCRAWL_INCREMENTAL = True  # re-runs skip unchanged articles
