"""Local feed files that survive a killed process: torn last lines are cut, data is flushed on demand.

Scrapy's :class:`~scrapy.extensions.feedexport.FileFeedStorage` writes through an ordinary
buffered file. When the process is killed (SIGKILL, OOM killer, power loss) the bytes still
in that buffer are lost and the file may end in half a record; a resumed crawl that appends
to it (``overwrite: False``) would then glue its first record onto the torn one and publish a
line that is not JSON. :class:`DurableFileFeedStorage` is the same storage plus three things:

* before appending to a JSON-lines file it cuts an unterminated last line (that record was
  never completely written, so it is not exported yet; the crawl journal re-fetches its page);
* it registers each open file with the crawl journal (:mod:`snapcrawl.extensions.journal`),
  which flushes it after every exported item (a kill then loses no exported record and tears
  no line) and fsyncs it in small batches before it records pages as completed;
* it fsyncs the file when the feed is stored, so a published run is on disk before its folder
  is renamed into place.

It is registered for ``file://`` and plain paths in ``FEED_STORAGES``; other schemes (S3, ...)
keep Scrapy's storages. Written by hand because neither Scrapy nor a maintained plugin offers
crash-safe append to local feeds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO, Any, Protocol

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.extensions.feedexport import FileFeedStorage

logger = logging.getLogger(__name__)

# Formats whose records are whole lines, so "everything up to the last newline" is complete.
LINE_FORMATS = frozenset({"jsonlines", "jsonl", "jl", "csv"})
_TAIL_CHUNK = 64 * 1024


class FeedRegistry(Protocol):
    """What the crawl journal offers the storage (kept as a protocol to avoid an import cycle)."""

    def register_feed(self, path: Path, file: IO[bytes], *, flushable: bool) -> None: ...

    def unregister_feed(self, path: Path) -> None: ...


def cut_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline; return the number of bytes removed.

    Only the unterminated end of the file is removed: every complete line stays. A missing
    or empty file is left alone.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with path.open("rb+") as f:
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            f.seek(start)
            chunk = f.read(end - start)
            if start + len(chunk) == size and chunk.endswith(b"\n"):
                return 0  # the common case: the file ends with a complete line
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            end = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def fsync_file(file: IO[bytes]) -> None:
    """Flush Python's buffer and ask the OS to put the file's data on disk."""
    file.flush()
    os.fsync(file.fileno())


class DurableFileFeedStorage(FileFeedStorage):
    """Scrapy's file storage with torn-line repair, journal-driven flushing and fsync on store."""

    def __init__(self, uri: str, *, feed_options: dict[str, Any] | None = None, crawler: Crawler | None = None):
        super().__init__(uri, feed_options=feed_options)
        options = feed_options or {}
        self.crawler = crawler
        # With a compression plugin the bytes in the file are not lines, and the plugin keeps
        # its own buffer that a flush of this file cannot reach: such feeds are repaired by the
        # journal (which decompresses them) and are not flushed mid-run.
        self.postprocessing = list(options.get("postprocessing") or [])
        self.line_format = str(options.get("format") or "") in LINE_FORMATS and not self.postprocessing
        self.fsync = crawler.settings.getbool("SNAPCRAWL_JOURNAL_FSYNC", True) if crawler is not None else True

    @classmethod
    def from_crawler(
        cls, crawler: Crawler, uri: str, *, feed_options: dict[str, Any] | None = None
    ) -> DurableFileFeedStorage:
        return cls(uri, feed_options=feed_options, crawler=crawler)

    def _registry(self) -> FeedRegistry | None:
        return getattr(self.crawler, "_snapcrawl_journal", None) if self.crawler is not None else None

    def open(self, spider: Spider) -> IO[bytes]:
        path = Path(self.path)
        if self.write_mode == "ab" and self.line_format:
            removed = cut_torn_tail(path)
            if removed:
                logger.warning("feed %s ended in a torn line: cut its last %d bytes before appending", path, removed)
                if self.crawler is not None and self.crawler.stats is not None:
                    self.crawler.stats.inc_value("snapcrawl/journal/torn_bytes_removed", removed)
        file = super().open(spider)
        registry = self._registry()
        if registry is not None:
            registry.register_feed(path, file, flushable=not self.postprocessing)
        return file

    def store(self, file: IO[bytes]) -> None:
        registry = self._registry()
        if registry is not None:
            registry.unregister_feed(Path(self.path))
        if not file.closed:
            if self.fsync:
                fsync_file(file)
            file.close()
