"""snapcrawl's Scrapy commands (``COMMANDS_MODULE``): ``crawl`` with clear errors and exit codes."""
