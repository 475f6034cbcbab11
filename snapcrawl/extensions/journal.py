"""Crash-safe ``JOBDIR`` crawls: a journal of accepted and completed pages, replayed after a kill.

Scrapy's ``JOBDIR`` makes a crawl pausable: on a clean stop (one SIGINT or SIGTERM) the
scheduler writes its queue state and the resumed crawl continues where it stopped. It does
not survive a kill (SIGKILL, OOM killer, power loss, a second Ctrl-C):

* the disk queue's state (``requests.queue/active.json`` and each queue file's size header)
  is only written on a clean close, so after a kill the pending requests are gone or garbled;
* ``requests.seen`` is written through a buffer, so it may lose its tail or end mid-record;
* a request is popped from the queue when it is sent, and its fingerprint is already "seen",
  so a page in flight at the kill would never be fetched again;
* the feed files lose the records still in their buffer and may end in a torn line, while
  records already written would be exported a second time when their page is re-fetched.

:class:`CrawlJournal` keeps ``JOBDIR/snapcrawl.journal``, an append-only log of

* ``S`` - a request the scheduler accepted (its fingerprint and the serialised request),
* ``D`` - a page completed: its callback finished, every item it yielded went through the
  pipelines and reached the feeds (which are flushed after every item), and the feed files
  were fsynced *before* the ``D`` line was written,
* ``K`` - a checkpoint: offsets in the feed files before which every record belongs to a
  page already marked ``D``,
* ``O`` / ``C`` - a session opened / closed cleanly.

After a clean close the journal only confirms that Scrapy's own state is sound. When the
previous session did not close cleanly, :meth:`CrawlJournal.from_crawler` repairs the job
before the engine reads it: it drops Scrapy's unreliable queue, rebuilds ``requests.seen``
from the ``S`` lines, cuts torn last lines off the partial feed files, reads the keys of the
records written after the last checkpoint, and on ``spider_opened`` re-schedules every
accepted-but-not-completed request (``dont_filter``, as its fingerprint is already seen).
:class:`JournalMiddleware` (a spider middleware) tells the journal when a page's output is
complete and skips records whose key is already in the feeds, so a re-fetched page adds only
what was lost: every record is exported exactly once. Re-scheduled requests are fetched in
full (``snapcrawl_unconditional``): a 304 against validators this same run noted before the
kill would end the page without its records.

Written by hand: neither Scrapy nor a maintained plugin makes ``JOBDIR`` crash-safe, and
the fix has to tie the scheduler, the spider output and the feed files together.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import logging
import os
import pickle
import shutil
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import IO, Any
from urllib.parse import urlsplit

from itemadapter import ItemAdapter, is_item
from scrapy import Request, Spider, signals
from scrapy.core.scheduler import Scheduler
from scrapy.crawler import Crawler
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.asyncio import AsyncioLoopingCall, create_looping_call
from scrapy.utils.misc import load_object
from scrapy.utils.request import request_from_dict
from twisted.internet.task import LoopingCall

from snapcrawl.addon import SettingError
from snapcrawl.exporters import link_positions, mark_written
from snapcrawl.extensions.lock import JobLock
from snapcrawl.feedstorage import DurableFileFeedStorage, cut_torn_tail
from snapcrawl.middlewares.incremental import UNCONDITIONAL
from snapcrawl.run import RUN_ID_FILE, RunInfo, get_run

logger = logging.getLogger(__name__)

JOURNAL_NAME = "snapcrawl.journal"
LOCK_NAME = "snapcrawl.lock"
FORMAT_VERSION = 1
# Scrapy's own JOBDIR entries that a crash leaves unreliable (see the module docstring).
SCRAPY_QUEUE_DIR = "requests.queue"
SCRAPY_SEEN_FILE = "requests.seen"
FEED_SUFFIXES = (".jsonl", ".jsonl.gz")

RecordKey = tuple[Any, ...]


class JournalError(RuntimeError):
    """The journal file cannot be read; the message names the file and line."""


def record_key(data: Mapping[str, Any]) -> RecordKey | None:
    """The identity of an exported record: what makes a second copy of it a duplicate.

    Articles are identified by their URL, link records by the article, list and position
    they come from, and a rejected record by the record it replaced (so a page whose
    article was rejected before a crash does not get it exported again after resume).
    Records without a complete key (``None`` parts) have no identity and are never skipped.
    """
    kind = data.get("type")
    if kind == "rejected":
        inner = data.get("record")
        return record_key(inner) if isinstance(inner, Mapping) else None
    key: RecordKey
    if kind == "article":
        key = ("article", data.get("url"))
    elif kind == "link":
        key = ("link", data.get("from_url"), data.get("list"), data.get("position"))
    else:
        return None
    return None if None in key else key


# ---------------------------------------------------------------------------- journal file


@dataclass
class Replay:
    """What an existing journal says about the sessions before this one."""

    sessions: int = 0
    last_close: str | None = None  # the reason of the last clean close; None if it was not clean
    run_id: str | None = None  # the run the last session wrote
    seen: set[bytes] = field(default_factory=set)  # every fingerprint the scheduler accepted
    pending: dict[bytes, str] = field(default_factory=dict)  # accepted, not completed: fp -> request
    checkpoint: dict[str, int] = field(default_factory=dict)
    intact_bytes: int = 0  # journal length without a torn last line
    size: int = 0


def read_journal(path: Path) -> Replay:
    """Replay ``path``; a torn last line (the process died while writing it) is ignored."""
    replay = Replay()
    if not path.exists():
        return replay
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                break  # torn: never completely written, so never relied upon
            try:
                _apply(replay, raw[:-1].decode("utf-8").split("\t"))
            except (ValueError, KeyError, IndexError, binascii.Error) as exc:
                raise JournalError(
                    f"{path}:{lineno}: unreadable journal line ({exc}); "
                    f"the job cannot be resumed safely - remove the JOBDIR to start over"
                ) from exc
            replay.intact_bytes += len(raw)
        replay.size = f.seek(0, os.SEEK_END)
    return replay


def _apply(replay: Replay, parts: list[str]) -> None:
    op = parts[0]
    if op == "S":
        fp = bytes.fromhex(parts[1])
        replay.seen.add(fp)
        replay.pending[fp] = parts[3]
    elif op == "D":
        for hexfp in parts[1:]:
            replay.pending.pop(bytes.fromhex(hexfp), None)
    elif op == "K":
        replay.checkpoint = {str(k): int(v) for k, v in json.loads(parts[1]).items()}
    elif op == "O":
        info = json.loads(parts[1])
        if int(info.get("v", 0)) > FORMAT_VERSION:
            raise ValueError(f"journal format {info.get('v')} is newer than this snapcrawl ({FORMAT_VERSION})")
        replay.sessions += 1
        replay.last_close = None
        replay.run_id = str(info.get("run_id") or "") or None
    elif op == "C":
        replay.last_close = str(json.loads(parts[1])["reason"])
    else:
        raise ValueError(f"unknown record {op!r}")


class _NotASpiderMethod(Exception):
    pass


def _method_name(func: Any, spider: Spider) -> str | None:
    """The spider attribute name of a bound spider method (None and names pass through)."""
    if func is None or isinstance(func, str):
        return func
    name = getattr(getattr(func, "__func__", None), "__name__", None)
    bound = getattr(spider, name, None) if name else None
    if getattr(func, "__self__", None) is spider and getattr(bound, "__func__", None) is func.__func__:
        return str(name)
    raise _NotASpiderMethod


def request_dict(request: Request, spider: Spider) -> dict[str, Any]:
    """What ``request.to_dict(spider=spider)`` returns, about 25 times faster.

    ``to_dict`` finds a callback's name with ``inspect.getmembers`` over the whole spider,
    about 140 us a request (measured on SnapshotsSpider), and Scrapy's disk queue already
    pays that once per request; a bound method knows its own name, checked here against the
    spider. Anything unusual (a lambda, another object's method) takes Scrapy's path.
    """
    try:
        callback, errback = _method_name(request.callback, spider), _method_name(request.errback, spider)
    except _NotASpiderMethod:
        return request.to_dict(spider=spider)
    d: dict[str, Any] = {"url": request.url, "callback": callback, "errback": errback, "headers": dict(request.headers)}
    for attr in request.attributes:
        d.setdefault(attr, getattr(request, attr))
    if type(request) is not Request:
        d["_class"] = f"{type(request).__module__}.{type(request).__name__}"
    return d


def serialize_request(request: Request, spider: Spider) -> str:
    """The request as Scrapy's disk queues store it (a pickled dict), base64 to fit on one line."""
    try:
        blob = pickle.dumps(request_dict(request, spider), protocol=4)
    except (pickle.PicklingError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"cannot serialise {request}: {exc}") from exc
    return base64.b64encode(blob).decode("ascii")


def deserialize_request(text: str, spider: Spider) -> Request:
    return request_from_dict(pickle.loads(base64.b64decode(text)), spider=spider)  # our own file: trusted


class _KnownFingerprints:
    """A request fingerprinter that returns the fingerprint carried in ``meta``.

    Used only to rebuild ``requests.seen`` through Scrapy's own :class:`RFPDupeFilter`
    (so the file format stays Scrapy's business) from the fingerprints in the journal.
    """

    def fingerprint(self, request: Request) -> bytes:
        fp: bytes = request.meta["fingerprint"]
        return fp


# ---------------------------------------------------------------------------- feed files


def repair_gzip(path: Path) -> tuple[bytes, int]:
    """Read a gzip feed that may end in a truncated member; rewrite it if it was damaged.

    Returns the complete lines (decompressed) and the number of bytes of uncompressed data
    dropped. A truncated gzip member followed by the members a resumed run appends would make
    the whole file unreadable, so a damaged file is rewritten (atomically) as one member.
    """
    data = path.read_bytes()
    out = bytearray()
    pos, intact = 0, True
    while pos < len(data):
        d = zlib.decompressobj(wbits=31)
        try:
            out += d.decompress(data[pos:])
        except zlib.error:
            intact = False
            break
        if not d.eof:
            intact = False
            break
        pos = len(data) - len(d.unused_data)
    cut = out.rfind(b"\n") + 1
    text = bytes(out[:cut])
    dropped = len(out) - cut
    if not intact or dropped:
        tmp = path.with_name(path.name + ".repair")
        tmp.write_bytes(gzip.compress(text, mtime=0))
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dropped = max(dropped, 1)
    return text, dropped


def _iter_lines(path: Path, offset: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            if raw.endswith(b"\n"):
                yield raw


@dataclass
class _Feed:
    path: Path
    file: IO[bytes]
    flushable: bool


@dataclass
class _Page:
    """One response whose output is being processed."""

    fp: bytes
    offsets: dict[str, int]  # feed offsets when it started: its records are at or after them
    outstanding: int = 0  # items yielded and not yet scraped / dropped / failed
    exhausted: bool = False  # the callback's output is finished


class CrawlJournal:
    """The journal of a ``JOBDIR`` crawl (see the module docstring). On by default with JOBDIR."""

    def __init__(self, crawler: Crawler, jobdir: Path, run: RunInfo, sync_interval: float, fsync: bool) -> None:
        self.crawler = crawler
        self.jobdir = jobdir
        self.path = jobdir / JOURNAL_NAME
        self.run = run
        self.sync_interval = sync_interval
        self.fsync = fsync
        self.file: IO[bytes] | None = None
        self.seen: set[bytes] = set()
        self.to_reschedule: dict[bytes, str] = {}
        self.skip: set[RecordKey] = set()
        # Records of pages carried over from a crashed session lie before any offset this
        # session sees; until those pages are done the checkpoint may not move past them.
        self.carry: set[bytes] = set()
        self.floor: dict[str, int] = {}
        self.feeds: dict[Path, _Feed] = {}
        # Offsets are taken for every page, so they are kept at hand: open partial feeds by
        # name, and the size of the others (as found at start, or when they were closed).
        self.folder = run.partial_dir.resolve() if run.local else None
        self.open_feeds: dict[str, IO[bytes]] = {}
        self.closed_sizes: dict[str, int] = {}
        self.pages: dict[Response, _Page] = {}
        self.done: list[bytes] = []
        self.session = 0
        self.recovered = False
        self.reason: str | None = None
        self.task: AsyncioLoopingCall | LoopingCall | None = None
        self.lock: JobLock | None = None
        self.sync_seconds = 0.0
        # Feeds this journal cannot flush mid-run (compressed, remote, another storage): their
        # records are only safe once the feed is closed, so pages are marked done at close.
        self.hold_done = _feeds_need_close(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlJournal:
        settings = crawler.settings
        jobdir = settings.get("JOBDIR")
        if not jobdir:
            raise NotConfigured  # the usual case: nothing to resume, nothing worth a warning
        if not settings.getbool("SNAPCRAWL_JOURNAL_ENABLED", True):
            raise NotConfigured("SNAPCRAWL_JOURNAL_ENABLED is off: a kill can lose or double records")
        if not _default_scheduling(crawler):
            logger.warning(
                "crawl journal off: it needs Scrapy's Scheduler and RFPDupeFilter (SCHEDULER=%s, DUPEFILTER_CLASS=%s)",
                settings.get("SCHEDULER"),
                settings.get("DUPEFILTER_CLASS"),
            )
            raise NotConfigured("custom scheduler or dupefilter")
        interval = settings.getfloat("SNAPCRAWL_JOURNAL_SYNC_INTERVAL", 1.0)
        if interval <= 0:
            raise SettingError(f"setting SNAPCRAWL_JOURNAL_SYNC_INTERVAL={interval!r}: must be above 0")
        # One process per JOBDIR: a second one would take a live job for a crashed one and
        # "repair" it under the first one's feet. The kernel drops the lock when we die.
        lock = JobLock(Path(jobdir) / LOCK_NAME, f"JOBDIR {jobdir}")
        lock.acquire()  # raises JobLockedError (exit status 3) naming the holder
        ext = cls(crawler, Path(jobdir), get_run(crawler), interval, settings.getbool("SNAPCRAWL_JOURNAL_FSYNC", True))
        ext.lock = lock
        # Must run now: the engine builds the scheduler (which reads requests.queue and
        # requests.seen) right after the extensions, before any signal we could wait for.
        try:
            ext.prepare()
        except BaseException:
            lock.release()
            raise
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.item_finished, signal=signals.item_dropped)
        crawler.signals.connect(ext.item_finished, signal=signals.item_error)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        crawler._snapcrawl_journal = ext  # type: ignore[attr-defined]
        return ext

    # ------------------------------------------------------------------ start / recovery

    def prepare(self) -> None:
        """Replay the journal; after an unclean stop, repair JOBDIR and the partial feeds."""
        replay = read_journal(self.path)
        if replay.sessions and self._finished(replay):
            # Scrapy would resume a finished job as "nothing left to do" and publish an empty
            # run. The publisher gives the next run a new id, so start a new job in this JOBDIR.
            if replay.run_id == self.run.run_id and self.run.local and self.run.partial_dir.exists():
                raise SettingError(
                    f"JOBDIR={str(self.jobdir)!r}: run {self.run.run_id} finished ({replay.last_close}) but was not"
                    f" published (see its log); a new job would append to its files. Publish or move"
                    f" {self.run.partial_dir}, then remove {self.jobdir / RUN_ID_FILE} to start a new run"
                )
            logger.info(
                "JOBDIR %s: its job (run %s) finished (%s); starting a new job in it",
                self.jobdir,
                replay.run_id,
                replay.last_close or "published",
            )
            self._reset_jobdir()
            replay = Replay()
        self.session = replay.sessions + 1
        self.seen = replay.seen
        if replay.sessions == 0:
            seen_file = self.jobdir / SCRAPY_SEEN_FILE
            if seen_file.exists() and seen_file.stat().st_size:
                logger.warning(
                    "JOBDIR %s was started without the crawl journal: it resumes as a plain Scrapy job, "
                    "and a kill before this session's clean close cannot be recovered exactly",
                    self.jobdir,
                )
            return
        if replay.last_close == "shutdown":
            logger.info("resuming run %s (session %d) after a clean pause", self.run.run_id, self.session)
            return
        self.recovered = True
        self._recover(replay)

    def _finished(self, replay: Replay) -> bool:
        """The job closed for good: a final close reason, or its run already published
        (a kill between the publisher's rename and the journal's close mark)."""
        if replay.last_close not in (None, "shutdown"):
            return True
        return replay.run_id is not None and self.run.local and (self.run.spider_dir / replay.run_id).is_dir()

    def _reset_jobdir(self) -> None:
        self.path.unlink(missing_ok=True)
        (self.jobdir / SCRAPY_SEEN_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.jobdir / SCRAPY_QUEUE_DIR, ignore_errors=True)

    def _recover(self, replay: Replay) -> None:
        stats = self.crawler.stats
        assert stats is not None
        if replay.intact_bytes < replay.size:
            with self.path.open("rb+") as f:
                f.truncate(replay.intact_bytes)
        # Scrapy's queue cannot be trusted after a kill: rebuild the job's scheduling state
        # from the journal. requests.seen is rewritten through Scrapy's own dupefilter.
        shutil.rmtree(self.jobdir / SCRAPY_QUEUE_DIR, ignore_errors=True)
        (self.jobdir / SCRAPY_SEEN_FILE).unlink(missing_ok=True)
        dupefilter = RFPDupeFilter(str(self.jobdir), fingerprinter=_KnownFingerprints())
        for fp in replay.seen:
            dupefilter.request_seen(Request("data:,", meta={"fingerprint": fp}))
        dupefilter.close("rebuilt")
        self.to_reschedule = replay.pending
        self.carry = set(replay.pending)
        self.floor = dict(replay.checkpoint)
        torn, corrupt = self._repair_feeds(replay.checkpoint)
        stats.set_value("snapcrawl/journal/recovered", 1)
        stats.inc_value("snapcrawl/journal/torn_bytes_removed", torn)
        if corrupt:
            stats.inc_value("snapcrawl/journal/corrupt_lines", corrupt)
        logger.warning(
            "run %s did not stop cleanly; recovered from the journal (session %d): %d of %d requests to "
            "re-schedule, %d torn feed bytes removed, %d records already exported after the last checkpoint",
            self.run.run_id,
            self.session,
            len(replay.pending),
            len(replay.seen),
            torn,
            len(self.skip),
        )

    def _partial_feeds(self) -> list[Path]:
        folder = self.run.partial_dir
        if not self.run.local or not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(FEED_SUFFIXES))

    def _repair_feeds(self, checkpoint: dict[str, int]) -> tuple[int, int]:
        """Cut torn lines and collect the keys of records a re-fetched page may produce again."""
        torn = corrupt = 0
        for path in self._partial_feeds():
            if path.name.endswith(".gz"):
                text, dropped = repair_gzip(path)
                torn += dropped
                lines: Iterator[bytes] = iter(text.splitlines(keepends=True))
                self.floor.pop(path.name, None)  # offsets in compressed files are not record positions
            else:
                torn += cut_torn_tail(path)
                offset = min(checkpoint.get(path.name, 0), path.stat().st_size)
                lines = _iter_lines(path, offset)
            for raw in lines:
                try:
                    key = record_key(json.loads(raw))
                except (ValueError, TypeError, AttributeError):
                    corrupt += 1
                    logger.error("feed %s has a line that is not a JSON object; left as is", path)
                    continue
                if key is not None:
                    self.skip.add(key)
        return torn, corrupt

    # ------------------------------------------------------------------ signals

    def spider_opened(self, spider: Spider) -> None:
        for path in self._partial_feeds():
            if not path.name.endswith(".gz"):
                self.closed_sizes[path.name] = path.stat().st_size
        self.file = self.path.open("ab")
        info = {"v": FORMAT_VERSION, "session": self.session, "pid": os.getpid(), "run_id": self.run.run_id}
        self._write(f"O\t{json.dumps(info)}\n")
        self._sync_journal()
        stats = self.crawler.stats
        assert stats is not None and self.crawler.engine is not None
        for fp, blob in self.to_reschedule.items():
            try:
                request = deserialize_request(blob, spider)
                # Fetched in full: this run may have noted the page's validators before the
                # kill, and a 304 would then end the page without its records.
                request = request.replace(dont_filter=True, meta={**request.meta, UNCONDITIONAL: True})
            except Exception as exc:  # a callback renamed since the crash, an unpicklable blob...
                stats.inc_value("snapcrawl/journal/unrestorable")
                logger.error("cannot re-schedule request %s from the journal: %s", fp.hex(), exc)
                self.carry.discard(fp)
                continue
            self.crawler.engine.crawl(request)
            stats.inc_value("snapcrawl/journal/rescheduled")
        self.to_reschedule = {}
        self.task = create_looping_call(self.sync)
        self.task.start(self.sync_interval, now=False)

    def request_scheduled(self, request: Request, spider: Spider) -> None:
        fp = self.crawler.request_fingerprinter.fingerprint(request)
        # The scheduler accepts exactly the fingerprints not seen yet (the journal and the
        # dupefilter hold the same set), so one S line per fingerprint is enough.
        if fp in self.seen:
            return
        try:
            blob = serialize_request(request, spider)
        except ValueError as exc:
            stats = self.crawler.stats
            assert stats is not None
            stats.inc_value("snapcrawl/journal/unserializable")
            logger.warning("request not journaled, a kill would lose it: %s", exc)
            return
        self.seen.add(fp)
        self._write(f"S\t{fp.hex()}\t{request.url}\t{blob}\n")

    def item_scraped(self, item: Any, response: Any = None, spider: Any = None) -> None:
        """The feeds have the item: hand it to the OS now, then settle it for its page.

        Receivers run in connection order and Scrapy's FeedExporter (an EXTENSIONS_BASE entry)
        connects before this extension, so the item is already in its feed's file buffer.
        Flushing per item costs about 1 us (one write call) and means a kill loses no
        exported record and tears no line; fsync stays per batch (see sync).
        """
        for feed in self.feeds.values():
            if feed.flushable and not feed.file.closed:
                feed.file.flush()
        self.item_finished(item, response)

    def item_finished(self, item: Any, response: Any = None, spider: Any = None, **kwargs: Any) -> None:
        """item_scraped / item_dropped / item_error: one more item of the page is settled."""
        page = self.pages.get(response) if isinstance(response, Response) else None
        if page is None:
            return
        page.outstanding -= 1
        self._maybe_done(response, page)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.reason = reason
        if self.task is not None and self.task.running:
            self.task.stop()
        report = getattr(self.crawler, "_snapcrawl_report", None)
        stats = self.crawler.stats
        assert stats is not None
        if report is not None:
            report.extra["resume"] = {
                "session": self.session,
                "recovered_from_crash": self.recovered,
                "requests_rescheduled": int(stats.get_value("snapcrawl/journal/rescheduled", 0)),
                "records_skipped_as_exported": int(stats.get_value("snapcrawl/journal/skipped_exported", 0)),
                "sync_seconds": round(self.sync_seconds, 3),
            }

    def engine_stopped(self) -> None:
        """Last sync once the feeds are closed, then the clean-close mark (if nothing is left over)."""
        try:
            self._close_journal()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _close_journal(self) -> None:
        if self.file is None:
            return
        self.sync(closing=True)
        if self.pages:
            # Something never finished: leave the session "unclean" so the next start
            # re-schedules from the journal instead of trusting Scrapy's queue.
            logger.warning("%d pages did not finish; the next start will recover from the journal", len(self.pages))
        else:
            self._write(f"C\t{json.dumps({'reason': self.reason or 'unknown'})}\n")
        self._sync_journal()
        self.file.close()
        self.file = None

    # ------------------------------------------------------------------ pages (from the middleware)

    def already_exported(self, item: Any) -> bool:
        """True when all of ``item``'s records are in the feeds already (drop it). An article
        whose line or some of whose link records are there (written before the kill) is marked
        so that only the missing ones are written (snapcrawl/exporters.py)."""
        if not self.skip:
            return False
        adapter = ItemAdapter(item)
        key = record_key(adapter)
        links: list[RecordKey] = []
        if adapter.get("type") == "article" and adapter.get("url") is not None:
            links = [("link", adapter.get("url"), name, pos) for name, pos in link_positions(adapter)]
        done_links = [k for k in links if k in self.skip]
        exported = key is not None and key in self.skip
        if not exported and not done_links:
            return False
        if key is not None:
            self.skip.discard(key)
        self.skip.difference_update(done_links)
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("snapcrawl/journal/skipped_exported", int(exported) + len(done_links))
        if exported and len(done_links) == len(links):
            return True
        mark_written(item, exported, {(k[2], k[3]) for k in done_links})
        return False

    def page_started(self, response: Response) -> _Page | None:
        if response.request is None:
            return None
        fp = self.crawler.request_fingerprinter.fingerprint(response.request)
        if fp not in self.seen:
            return None  # not a journaled request (nothing to complete)
        page = _Page(fp=fp, offsets=self._offsets())
        self.pages[response] = page
        return page

    def page_failed(self, response: Response) -> None:
        """The callback (or errback) raised before producing output: the page is done all the same,
        as fetching it again would fail the same way."""
        if response in self.pages or response.request is None:
            return  # the output wrapper settles it
        fp = self.crawler.request_fingerprinter.fingerprint(response.request)
        if fp in self.seen:
            self.done.append(fp)
            self.carry.discard(fp)

    def outputs_done(self, response: Response, page: _Page) -> None:
        page.exhausted = True
        self._maybe_done(response, page)

    def _maybe_done(self, response: Response, page: _Page) -> None:
        if page.exhausted and page.outstanding <= 0 and self.pages.get(response) is page:
            del self.pages[response]
            self.done.append(page.fp)
            self.carry.discard(page.fp)

    # ------------------------------------------------------------------ feeds (from the storage)

    def register_feed(self, path: Path, file: IO[bytes], *, flushable: bool) -> None:
        path = path.resolve()
        self.feeds[path] = _Feed(path, file, flushable)
        if flushable and path.parent == self.folder:
            self.open_feeds[path.name] = file

    def unregister_feed(self, path: Path) -> None:
        feed = self.feeds.pop(path.resolve(), None)
        if feed is not None and self.open_feeds.pop(feed.path.name, None) is not None and not feed.file.closed:
            self.closed_sizes[feed.path.name] = feed.file.tell()

    def _offsets(self) -> dict[str, int]:
        """Current end of each partial feed file, its buffer included (no system call but tell)."""
        out = dict(self.closed_sizes)
        for name, file in self.open_feeds.items():
            if not file.closed:
                out[name] = file.tell()
        return out

    def _checkpoint(self) -> dict[str, int]:
        marks = self._offsets()
        lows = [page.offsets for page in self.pages.values()]
        if self.carry:
            lows.append(self.floor)
        for name in marks:
            for low in lows:
                marks[name] = min(marks[name], low.get(name, 0))
        return marks

    # ------------------------------------------------------------------ writing

    def _write(self, line: str) -> None:
        assert self.file is not None
        self.file.write(line.encode("utf-8"))

    def _sync_journal(self) -> None:
        assert self.file is not None
        self.file.flush()
        if self.fsync:
            os.fsync(self.file.fileno())

    def sync(self, closing: bool = False) -> None:
        """Make completed pages durable: feeds first, then S lines, then the D lines.

        Order matters. A ``D`` line must never reach the disk before the page's records
        (feed flush + fsync) and the requests it yielded (``S`` lines, journal fsync);
        otherwise a kill after it would lose them. ``D`` lines themselves may be lost: the
        page is then fetched again and its records are recognised as already exported.
        """
        if self.file is None:
            return
        started = time.perf_counter()
        for feed in list(self.feeds.values()):
            if feed.flushable and not feed.file.closed:
                feed.file.flush()
                if self.fsync:
                    os.fsync(feed.file.fileno())
        self._sync_journal()
        if self.done and (closing or not self.hold_done):
            self._write("D\t" + "\t".join(fp.hex() for fp in self.done) + "\n")
            self.done = []
            self._write(f"K\t{json.dumps(self._checkpoint(), sort_keys=True)}\n")
            self.file.flush()
        self.sync_seconds += time.perf_counter() - started


def _default_scheduling(crawler: Crawler) -> bool:
    """True when Scrapy's scheduler and file dupefilter (whose JOBDIR files we repair) are in use."""
    settings = crawler.settings
    try:
        scheduler = load_object(settings["SCHEDULER"])
        dupefilter = load_object(settings["DUPEFILTER_CLASS"])
    except (ImportError, ValueError, NameError):
        return False
    return issubclass(scheduler, Scheduler) and issubclass(dupefilter, RFPDupeFilter)


def _feeds_need_close(crawler: Crawler) -> bool:
    """True when some feed's records are only safe once it is closed (see CrawlJournal.hold_done)."""
    settings = crawler.settings
    storages = settings.getwithbase("FEED_STORAGES")
    for uri, options in settings.getdict("FEEDS").items():
        scheme = urlsplit(str(uri)).scheme
        if PureWindowsPath(str(uri)).drive:
            scheme = "file"
        cls_path = storages.get(scheme or "")
        try:
            cls = load_object(cls_path) if cls_path else None
        except (ImportError, ValueError, NameError):
            cls = None
        if not (isinstance(cls, type) and issubclass(cls, DurableFileFeedStorage)):
            return True
        if (options or {}).get("postprocessing"):
            return True
    return False


class JournalMiddleware:
    """Spider middleware of the crawl journal: reports when a page's output is complete and
    skips records already exported before a crash. Outermost (lowest order), so it sees the
    final output of the callback after every other spider middleware."""

    def __init__(self, journal: CrawlJournal) -> None:
        self.journal = journal

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JournalMiddleware:
        journal = getattr(crawler, "_snapcrawl_journal", None)
        if journal is None:
            raise NotConfigured  # the extension said why, if there was a reason worth saying
        return cls(journal)

    async def process_spider_output(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        page = self.journal.page_started(response)
        finished = False
        try:
            async for out in result:
                if is_item(out):
                    if self.journal.already_exported(out):
                        continue
                    if page is not None:
                        page.outstanding += 1
                yield out
            finished = True
        except GeneratorExit:
            raise  # abandoned, not finished: leave the page incomplete
        except Exception:
            finished = True  # the callback failed: fetching it again would fail the same way
            raise
        finally:
            if page is not None and finished:
                self.journal.outputs_done(response, page)

    def process_spider_exception(self, response: Response, exception: Exception) -> None:
        self.journal.page_failed(response)
        return None  # not handled here: Scrapy logs it as usual
