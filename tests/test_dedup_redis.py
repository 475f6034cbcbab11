"""Several workers sharing one state: pipelines on one Redis, and racing writers on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from snapcrawl.dedup.redis import RedisStore
from snapcrawl.dedup.sqlite import SQLiteStore
from snapcrawl.dedup.store import NEAR, Assignment, StateStore
from snapcrawl.pipelines.dedup import DedupPipeline
from snapcrawl.processors import record_id
from tests.dedup_helpers import OTHER_STORY, STORY, article, as_dict, doc, edited, redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def worker(redis_url: str, run_id: str, prefix: str, **settings: Any) -> DedupPipeline:
    crawler = get_crawler(
        settings_dict={
            "SNAPCRAWL_REDIS_URL": redis_url,
            "SNAPCRAWL_REDIS_STATE_PREFIX": prefix,
            "SNAPCRAWL_RUN_ID": run_id,
            **settings,
        }
    )
    pipeline = DedupPipeline.from_crawler(crawler)
    pipeline.open_spider()
    return pipeline


def test_two_pipelines_sharing_one_redis_agree_on_clusters(redis_url: str) -> None:
    prefix = "test:pipelines:"
    w1, w2 = worker(redis_url, "run-w1", prefix), worker(redis_url, "run-w2", prefix)
    try:
        original = "http://a.test/keji/1.html"
        first = as_dict(w1.process_item(article(original, "地铁十四号线东段月底开通", STORY)))
        assert first["cluster_id"] == record_id(original) and first["duplicate_of"] is None

        copy = as_dict(w2.process_item(article("http://b.test/x/2.html", "地铁十四号线东段本月底开通", edited(STORY))))
        assert (copy["duplicate_of"], copy["duplicate_kind"]) == (original, NEAR)
        assert copy["cluster_id"] == first["cluster_id"]

        exact = as_dict(w1.process_item(article("http://c.test/3.html", "地铁十四号线东段本月底开通", edited(STORY))))
        assert (exact["duplicate_of"], exact["duplicate_kind"], exact["cluster_id"]) == (
            original,
            "exact",
            first["cluster_id"],
        )
        other = as_dict(w2.process_item(article("http://a.test/keji/4.html", "共享单车投放实行动态调控", OTHER_STORY)))
        assert other["duplicate_of"] is None and other["cluster_id"] == record_id("http://a.test/keji/4.html")
        # the same URL met by the other worker gets the answer the first one recorded
        again = as_dict(w1.process_item(article("http://b.test/x/2.html", "地铁十四号线东段本月底开通", edited(STORY))))
        assert (again["duplicate_of"], again["cluster_id"]) == (original, first["cluster_id"])
        assert w2.stats.get_value("snapcrawl/dedup/near") == 1
        assert w1.stats.get_value("snapcrawl/dedup/near") == 1
        assert w1.stats.get_value("snapcrawl/dedup/exact") == 1
    finally:
        w1.close_spider()
        w2.close_spider()


def test_drop_policy_across_workers_withholds_copy_and_its_links(redis_url: str) -> None:
    prefix = "test:drop:"
    w1 = worker(redis_url, "run-d1", prefix, SNAPCRAWL_DUP_POLICY="drop")
    w2 = worker(redis_url, "run-d2", prefix, SNAPCRAWL_DUP_POLICY="drop")
    try:
        w1.process_item(article("http://a.test/1.html", "地铁十四号线东段月底开通", STORY))
        copy = article("http://b.test/2.html", "地铁十四号线东段本月底开通", edited(STORY))
        copy.more_in_category = [{"title": "其他", "url": "http://b.test/3.html"}]
        with pytest.raises(DropItem, match=r"near duplicate of http://a\.test/1\.html"):
            w2.process_item(copy)
        # the copy's link records are written from it by the feeds, so they go unexported with it
        assert w2.stats.get_value("snapcrawl/dedup/withheld/article") == 1
        assert w2.stats.get_value("snapcrawl/dedup/withheld/link") == 1
    finally:
        w1.close_spider()
        w2.close_spider()


def _race(make: Callable[[int], StateStore], copies: int = 8, workers: int = 4) -> list[tuple[str, Assignment]]:
    """``copies`` near-copies of one story assigned at once by ``workers`` threads, each with its own store."""
    docs = [
        doc(f"http://site{i}.test/story.html", "地铁十四号线东段月底开通", [*edited(STORY), f"（来源：第{i}家网站）"])
        for i in range(copies)
    ]
    results: list[tuple[str, Assignment]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            store = make(w)
            barrier.wait()
            for d in docs[w::workers]:
                got = store.assign(d, 0.45)
                with lock:
                    results.append((d.url, got))
            store.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_racing_writers_make_exactly_one_cluster(backend: str, redis_url: str, tmp_path: Path) -> None:
    for attempt in range(5):
        path = tmp_path / f"race{attempt}.sqlite"
        prefix = f"test:race{attempt}:"
        if backend == "sqlite":
            SQLiteStore(path, "init").close()  # create the schema before the race

        def make(w: int, path: Path = path, prefix: str = prefix) -> StateStore:
            if backend == "redis":
                return RedisStore.from_url(redis_url, f"run{w}", prefix=prefix)
            return SQLiteStore(path, f"run{w}")

        results = _race(make)
        roots = [url for url, a in results if a.duplicate_of is None]
        assert len(roots) == 1, (attempt, results)
        assert {a.cluster_id for _, a in results} == {record_id(roots[0])}
        assert all(a.duplicate_of == roots[0] for url, a in results if url != roots[0])
