"""snapcrawl: crawl news-aggregator snapshot sites into clean, deduplicated JSON lines."""

__version__ = "0.1.0"
