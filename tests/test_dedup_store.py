"""The state stores against real backends: a SQLite file, and a redis-server started here.

Both backends must give the same answers, so every behaviour test runs on both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from snapcrawl.dedup import open_store
from snapcrawl.dedup.bands import BandIndex
from snapcrawl.dedup.minhash import Layout, Signer
from snapcrawl.dedup.redis import RedisStore
from snapcrawl.dedup.sqlite import SQLiteStore
from snapcrawl.dedup.store import ARTICLE, EXACT, NEAR, PAGE, StateError, StateStore
from snapcrawl.processors import record_id
from tests.dedup_helpers import OTHER_STORY, STORY, doc, edited, redis_server

THRESHOLD = 0.45
# the first two band keys of STORY, recorded once: a change means stored state no longer matches
STABLE_BAND_KEYS = [708081921196863335, 6061105128711825772]
Factory = Callable[[str], StateStore]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """A factory of stores sharing one state (file or Redis prefix): one store per run id."""
    opened: list[StateStore] = []
    if request.param == "sqlite":

        def factory(run_id: str) -> StateStore:
            opened.append(SQLiteStore(tmp_path / "state.sqlite", run_id))
            return opened[-1]

    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"test:{request.node.name}:"

        def factory(run_id: str) -> StateStore:
            opened.append(RedisStore.from_url(url, run_id, prefix=prefix))
            return opened[-1]

    yield factory
    for store in opened:
        store.close()


def test_exact_copy_joins_the_first_seen_record(make_store: Factory) -> None:
    store = make_store("run1")
    first = store.assign(doc("http://a.test/1.html", "地铁十四号线东段月底开通", STORY), THRESHOLD)
    assert (first.cluster_id, first.duplicate_of, first.kind) == (record_id("http://a.test/1.html"), None, None)
    copy = store.assign(doc("http://b.test/x.html", "地铁十四号线东段月底开通", STORY), THRESHOLD)
    assert copy.kind == EXACT
    assert copy.cluster_id == record_id("http://a.test/1.html")
    assert copy.duplicate_of == "http://a.test/1.html"


def test_near_copy_and_copy_of_copy_point_at_the_root(make_store: Factory) -> None:
    store = make_store("run1")
    root = "http://a.test/1.html"
    store.assign(doc(root, "地铁十四号线东段月底开通", STORY), THRESHOLD)
    near = store.assign(doc("http://b.test/2.html", "地铁十四号线东段本月底开通", edited(STORY)), THRESHOLD)
    assert near.kind == NEAR and near.duplicate_of == root and near.cluster_id == record_id(root)
    assert near.similarity is not None and THRESHOLD <= near.similarity < 1
    # an exact copy of the near copy: same cluster, first-seen record of the cluster is still the root
    again = store.assign(doc("http://c.test/3.html", "地铁十四号线东段本月底开通", edited(STORY)), THRESHOLD)
    assert (again.kind, again.duplicate_of, again.cluster_id) == (EXACT, root, record_id(root))
    unrelated = store.assign(doc("http://a.test/4.html", "共享单车投放实行动态调控", OTHER_STORY), THRESHOLD)
    assert (unrelated.kind, unrelated.duplicate_of) == (None, None)
    assert unrelated.cluster_id == record_id("http://a.test/4.html")


def test_a_strict_threshold_keeps_the_copy_apart(make_store: Factory) -> None:
    store = make_store("run1")
    store.assign(doc("http://a.test/1.html", "地铁十四号线东段月底开通", STORY), THRESHOLD)
    near = store.assign(doc("http://b.test/2.html", "地铁十四号线东段本月底开通", edited(STORY)), 0.95)
    assert near.kind is None and near.cluster_id == record_id("http://b.test/2.html")


def test_known_url_keeps_its_cluster_and_its_revision_is_indexed(make_store: Factory) -> None:
    store = make_store("run1")
    url = "http://a.test/1.html"
    store.assign(doc(url, "地铁十四号线东段月底开通", STORY), THRESHOLD)
    revised = [*STORY[:3], "记者从市交通运输局获悉，东段开通首日客流达到十二万人次，运营秩序平稳。"]
    again = store.assign(doc(url, "地铁十四号线东段月底开通", revised), THRESHOLD)
    assert again.known and again.cluster_id == record_id(url) and again.kind is None
    # the revised text is now indexed: an exact copy of it finds the same cluster
    copy = store.assign(doc("http://b.test/9.html", "地铁十四号线东段月底开通", revised), THRESHOLD)
    assert (copy.kind, copy.duplicate_of) == (EXACT, url)


def test_a_later_run_finds_the_earlier_runs_clusters(make_store: Factory) -> None:
    first = make_store("run1")
    first.assign(doc("http://a.test/1.html", "地铁十四号线东段月底开通", STORY), THRESHOLD)
    first.close()
    later = make_store("run2")
    near = later.assign(doc("http://b.test/2.html", "地铁十四号线东段本月底开通", edited(STORY)), THRESHOLD)
    assert (near.kind, near.duplicate_of) == (NEAR, "http://a.test/1.html")


def test_url_state_is_pending_until_the_run_is_confirmed(make_store: Factory) -> None:
    run1 = make_store("run1")
    art, listing = "http://a.test/1.html", "http://a.test/list/"
    run1.note_fetch(art, '"v1"', "Sat, 20 Dec 2025 00:00:00 GMT")
    run1.note_article(art, "a" * 64, 1)
    run1.note_fetch(listing, '"l1"', None)
    # pending state is nobody's "last run", not even this run's (a page seen again after a kill
    # whose first visit never reached the feeds must not look unchanged)
    assert run1.page(art) is None
    other = make_store("run-killed")
    assert other.page(art) is None and other.page(listing) is None
    assert run1.confirm() == 2
    run2 = make_store("run2")
    state = run2.page(art)
    assert state is not None and state.kind == ARTICLE and state.conditional
    assert (state.content_hash, state.revision, state.etag) == ("a" * 64, 1, '"v1"')
    assert state.last_modified == "Sat, 20 Dec 2025 00:00:00 GMT"
    listing_state = run2.page(listing)
    assert listing_state is not None and listing_state.kind == PAGE and not listing_state.conditional

    # run2 is killed after fetching a revision: run3 still sees run1's confirmed state
    run2.note_fetch(art, '"v2"', None)
    run2.note_article(art, "b" * 64, 2)
    run3 = make_store("run3")
    state = run3.page(art)
    assert state is not None and (state.content_hash, state.revision, state.etag) == ("a" * 64, 1, '"v1"')
    # run3 gets the page back without validators this time: they are cleared, the kind stays
    run3.note_fetch(art, None, None)
    run3.note_article(art, "b" * 64, 2)
    assert run3.confirm() == 1
    state = make_store("run4").page(art)
    assert state is not None and (state.content_hash, state.revision, state.etag) == ("b" * 64, 2, None)
    assert not state.conditional


def test_an_article_that_becomes_a_listing_is_fetched_in_full_next_time(make_store: Factory) -> None:
    run1 = make_store("run1")
    url = "http://a.test/1.html"
    run1.note_fetch(url, '"v1"', None)
    run1.note_article(url, "a" * 64, 1)
    run1.confirm()
    run2 = make_store("run2")
    run2.note_fetch(url, '"v2"', None)  # fetched, but no article came out of it
    run2.confirm()
    state = make_store("run3").page(url)
    assert state is not None and state.kind == PAGE and not state.conditional
    assert state.content_hash == "a" * 64  # kept: a page that parses again is compared with it


def test_sqlite_file_is_wal_and_layout_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.sqlite"
    store = SQLiteStore(path, "run1")
    store.assign(doc("http://a.test/1.html", "地铁十四号线东段月底开通", STORY), THRESHOLD)
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM docs").fetchone()[0] == 1
    with pytest.raises(StateError) as err:
        SQLiteStore(path, "run2", Layout(num_perm=64, bands=21))
    assert str(path) in str(err.value) and "layout" in str(err.value)
    not_a_db = tmp_path / "garbage.sqlite"
    not_a_db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match=r"garbage\.sqlite"):
        SQLiteStore(not_a_db, "run1")


def test_sqlite_second_connection_sees_first_writers_documents(tmp_path: Path) -> None:
    """Two processes on one file: each assign first picks up what the other added."""
    path = tmp_path / "state.sqlite"
    a, b = SQLiteStore(path, "run-a"), SQLiteStore(path, "run-b")
    try:
        a.assign(doc("http://a.test/1.html", "地铁十四号线东段月底开通", STORY), THRESHOLD)
        near = b.assign(doc("http://b.test/2.html", "地铁十四号线东段本月底开通", edited(STORY)), THRESHOLD)
        assert (near.kind, near.duplicate_of) == (NEAR, "http://a.test/1.html")
        again = a.assign(doc("http://c.test/3.html", "地铁十四号线东段本月底开通", edited(STORY)), THRESHOLD)
        assert (again.kind, again.duplicate_of) == (EXACT, "http://a.test/1.html")
    finally:
        a.close()
        b.close()


def test_sqlite_index_is_rebuilt_from_stored_signatures(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    first = SQLiteStore(path, "run1")
    for i in range(30):
        first.assign(doc(f"http://a.test/{i}.html", f"第{i}条", [f"编号{i}的独立报道内容。", *OTHER_STORY]), 0.99)
    first.assign(doc("http://a.test/story.html", "地铁十四号线东段月底开通", STORY), THRESHOLD)
    first.close()
    reopened = SQLiteStore(path, "run2")
    assert len(reopened.index) == 31 * reopened.layout.bands
    near = reopened.assign(doc("http://b.test/2.html", "地铁十四号线东段本月底开通", edited(STORY)), THRESHOLD)
    assert near.duplicate_of == "http://a.test/story.html"
    reopened.close()


def test_redis_store_reports_a_bad_url_and_an_unreachable_server(redis_url: str) -> None:
    with pytest.raises(StateError, match="SNAPCRAWL_REDIS_URL"):
        RedisStore.from_url("nonsense://x", "run1")
    with pytest.raises(StateError, match=r"127\.0\.0\.1:1"):
        RedisStore.from_url("redis://:secret@127.0.0.1:1/0", "run1")
    try:
        RedisStore.from_url("redis://:secret@127.0.0.1:1/0", "run1")
    except StateError as exc:
        assert "secret" not in str(exc)


def test_open_store_picks_the_backend(tmp_path: Path, redis_url: str) -> None:
    from scrapy.settings import Settings

    sqlite_store = open_store(Settings({"SNAPCRAWL_STATE_PATH": str(tmp_path / "s.sqlite")}), "r")
    assert isinstance(sqlite_store, SQLiteStore) and Path(sqlite_store.path) == tmp_path / "s.sqlite"
    sqlite_store.close()
    memory = open_store(Settings({"SNAPCRAWL_STATE_PATH": ""}), "r")
    assert isinstance(memory, SQLiteStore) and memory.path == ":memory:"
    memory.close()
    shared = open_store(Settings({"SNAPCRAWL_STATE_PATH": str(tmp_path / "x"), "SNAPCRAWL_REDIS_URL": redis_url}), "r")
    assert isinstance(shared, RedisStore)
    shared.close()
    assert redis.Redis.from_url(redis_url).hget("snapcrawl:state:meta", "schema") == b"1"


def test_band_index_answers_the_same_before_and_after_merges() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(-(2**63), 2**63 - 1, size=(400, 6), dtype=np.int64)
    keys[200:260] = keys[100:160]  # 60 documents share every band with an earlier one
    keys[300:, 2] = keys[0, 2]  # 100 documents share band 2 with document 0 (a hot bucket)
    merged, plain = BandIndex(6, merge_at=60, max_bucket=50), BandIndex(6, merge_at=10**9, max_bucket=50)
    for n in range(400):
        a, b = merged.query_add(n + 1, keys[n]), plain.query_add(n + 1, keys[n])
        assert a == b, n
        if 200 <= n < 260:
            assert n - 100 + 1 in a
    assert len(merged) == len(plain) == 400 * 6 - 51  # the hot bucket (101 documents) kept its first 50
    assert len(merged.query_add(999, keys[0])) <= 6 * 50
    bulk = BandIndex(6)
    bulk.load(np.arange(1, 401, dtype=np.uint32), keys)
    assert bulk.query_add(1000, keys[150]) >= {151, 251}


def test_signatures_are_stable_across_processes() -> None:
    """Stored signatures are compared with new ones for months: the bytes must never drift."""
    signer = Signer()
    sig = signer.signature("地铁十四号线东段月底开通", "\n\n".join(STORY), "zh")
    assert sig is not None
    assert signer.band_keys(sig)[:2] == STABLE_BAND_KEYS
    en = signer.signature("Subway line opens", "The eastern section of the new subway line opened on Saturday. " * 3)
    assert en is not None and en.dtype == np.uint32 and en.shape == (128,)
