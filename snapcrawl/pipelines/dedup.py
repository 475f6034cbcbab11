"""Content-level deduplication and revisions across runs.

Every article gets ``content_hash`` (normalised title + body), ``cluster_id`` (the id of the
first-seen record of its story) and, when it is a copy, ``duplicate_of`` (that record's URL)
and ``duplicate_kind`` (``exact``: same content hash; ``near``: MinHash similarity at or
above ``SNAPCRAWL_NEAR_DUP_THRESHOLD``). The index lives in the project's state store, so a
copy found in a later run joins the cluster of a story exported months earlier.

Across runs the pipeline also compares each article with its URL's content hash from the last
confirmed run: the same hash means unchanged (counted, not exported again when
``SNAPCRAWL_INCREMENTAL`` is on); another hash makes a new revision (``revision`` + 1,
``previous_content_hash``). With ``SNAPCRAWL_DUP_POLICY = drop`` copies are counted and not
exported. Link records of an article that is not exported are not exported either (the feeds
write them from the article, snapcrawl/exporters.py).
"""

from __future__ import annotations

import logging
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import StatsCollector

from snapcrawl.addon import SettingError
from snapcrawl.dedup import DEFAULT_NEAR_DUP_THRESHOLD, open_store
from snapcrawl.dedup.minhash import Signer
from snapcrawl.dedup.store import Doc, StateStore
from snapcrawl.exporters import article_written, count_link_records
from snapcrawl.processors import content_hash, record_id
from snapcrawl.run import get_run

logger = logging.getLogger(__name__)

ANNOTATE, DROP = "annotate", "drop"
POLICIES = (ANNOTATE, DROP)
#: Below this threshold the fixed LSH banding misses a growing share of candidates.
LSH_FLOOR = 0.35


class DedupPipeline:
    """Clusters copies (exact and near) and tracks unchanged / revised articles across runs."""

    def __init__(self, crawler: Crawler, *, threshold: float, policy: str, incremental: bool) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.threshold = threshold
        self.policy = policy
        self.incremental = incremental
        self.signer = Signer()
        self.store: StateStore | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupPipeline:
        settings = crawler.settings
        raw_policy = settings.get("SNAPCRAWL_DUP_POLICY") or ANNOTATE
        policy = str(raw_policy).strip().lower()
        if policy not in POLICIES:
            raise SettingError(f"setting SNAPCRAWL_DUP_POLICY={raw_policy!r}: expected one of {', '.join(POLICIES)}")
        try:
            threshold = settings.getfloat("SNAPCRAWL_NEAR_DUP_THRESHOLD", DEFAULT_NEAR_DUP_THRESHOLD)
        except ValueError:
            raise SettingError(
                f"setting SNAPCRAWL_NEAR_DUP_THRESHOLD={settings.get('SNAPCRAWL_NEAR_DUP_THRESHOLD')!r}: expected float"
            ) from None
        if not 0 < threshold <= 1:
            raise SettingError(f"setting SNAPCRAWL_NEAR_DUP_THRESHOLD={threshold!r}: must be in (0, 1]")
        if threshold < LSH_FLOOR:
            logger.warning(
                "SNAPCRAWL_NEAR_DUP_THRESHOLD=%s is below %s: pairs that similar are found only sometimes "
                "(the LSH banding is tuned for %s and up)",
                threshold,
                LSH_FLOOR,
                LSH_FLOOR,
            )
        incremental = settings.getbool("SNAPCRAWL_INCREMENTAL", True)
        return cls(crawler, threshold=threshold, policy=policy, incremental=incremental)

    def open_spider(self, spider: Any = None) -> None:
        self.store = open_store(self.crawler.settings, get_run(self.crawler).run_id)
        logger.info(
            "dedup: state in %s; near-duplicate threshold %s; copies %s",
            self.store.describe(),
            self.threshold,
            "dropped" if self.policy == DROP else "exported and marked",
        )

    def close_spider(self, spider: Any = None) -> None:
        if self.store is None:
            return
        # A run paused with JOBDIR will be resumed under the same run id and publish later;
        # confirming now would make its unpublished pages look "unchanged" to the next run.
        paused = bool(self.crawler.settings.get("JOBDIR")) and not self.crawler.crawling
        try:
            if paused:
                logger.info("dedup: run paused; URL state stays pending until the run is resumed")
            else:
                confirmed = self.store.confirm()
                logger.info("dedup: state of %d URLs confirmed for the next run", confirmed)
        finally:
            self.store.close()
            self.store = None

    # ------------------------------------------------------------------ items

    def process_item(self, item: Any, spider: Any = None) -> Any:
        adapter = ItemAdapter(item)
        record_type = adapter.get("type")
        if record_type != "article" or article_written(item):  # the latter: annotated before a crash
            return item
        assert self.store is not None, "DedupPipeline used before open_spider"
        store = self.store
        url: str = adapter["url"]
        title, body = adapter.get("title"), adapter.get("body")
        own_id = adapter.get("id") or record_id(url)
        digest = content_hash(title, body)
        adapter["id"], adapter["content_hash"] = own_id, digest

        previous = store.page(url)
        revision, previous_hash = 1, None
        if previous is not None and previous.content_hash:
            if previous.content_hash == digest:
                revision = previous.revision or 1
                if self.incremental:
                    store.note_article(url, digest, revision)
                    self.stats.inc_value("snapcrawl/dedup/unchanged")
                    self._withhold(adapter)
                    raise DropItem("unchanged since the last run")
            else:
                revision, previous_hash = (previous.revision or 1) + 1, previous.content_hash
                self.stats.inc_value("snapcrawl/dedup/revised")
        adapter["revision"], adapter["previous_content_hash"] = revision, previous_hash

        signature = self.signer.signature(title, body, adapter.get("language"))
        if signature is None:
            self.stats.inc_value("snapcrawl/dedup/too_short")
        bands = self.signer.band_keys(signature) if signature is not None else ()
        found = store.assign(Doc(own_id, url, digest, signature, bands), self.threshold)
        adapter["cluster_id"] = found.cluster_id
        adapter["duplicate_of"] = found.duplicate_of
        adapter["duplicate_kind"] = found.kind
        store.note_article(url, digest, revision)
        if found.kind is None:
            return item
        self.stats.inc_value(f"snapcrawl/dedup/{found.kind}")
        if self.policy == DROP:
            reason = f"{found.kind} duplicate of {found.duplicate_of}"
            self.stats.inc_value("snapcrawl/dedup/withheld/article")
            self._withhold(adapter)
            raise DropItem(reason)
        return item

    def _withhold(self, adapter: ItemAdapter) -> None:
        """Count the link records that go unexported with their article (they are written from it)."""
        self.stats.inc_value("snapcrawl/dedup/withheld/link", count_link_records(adapter.item, adapter))
