"""Crash safety of JOBDIR crawls: SIGKILL at random points, resume, and nothing lost or doubled.

End-to-end tests kill real ``scrapy crawl`` processes (seeded kill points, counted in pages
served by the real sample server) and resume them with the same command; the published
exports must equal an uninterrupted crawl's, once each, every line valid JSON. Unit tests
cover the repair steps (torn lines, truncated gzip, journal replay) on their own.
"""

from __future__ import annotations

import gzip
import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapcrawl.extensions.journal import JOURNAL_NAME, JournalError, read_journal, record_key, repair_gzip
from snapcrawl.feedstorage import cut_torn_tail
from snapcrawl.run import RUN_ID_FILE
from snapcrawl.sample.site import build_site
from tests.conftest import SlowServer
from tests.test_resume import (
    DELAY,
    Reference,
    assert_same_records,
    exported,
    partial_dirs,
    published_dir,
    read_lines,
    run_session,
)

# ---------------------------------------------------------------------------- unit: repairs


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"", b""),
        (b'{"a": 1}\n', b'{"a": 1}\n'),
        (b'{"a": 1}\n{"b": 2', b'{"a": 1}\n'),
        (b'{"b": 2', b""),
        (b'{"a": 1}\n' + b"x" * 200_000, b'{"a": 1}\n'),  # torn line longer than one read chunk
        (b'{"a": 1}\n{"b": 2}', b'{"a": 1}\n'),  # complete JSON but no newline: not known complete
    ],
)
def test_cut_torn_tail_keeps_every_complete_line(tmp_path: Path, content: bytes, kept: bytes) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    assert cut_torn_tail(path) == len(content) - len(kept)
    assert path.read_bytes() == kept


def test_cut_torn_tail_missing_file(tmp_path: Path) -> None:
    assert cut_torn_tail(tmp_path / "none.jsonl") == 0


def test_repair_gzip_truncated_member_followed_by_a_new_one(tmp_path: Path) -> None:
    """A killed run leaves a truncated member; a resumed run appends a member after it."""
    path = tmp_path / "links.jsonl.gz"
    first = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"z" * (i % 50)) for i in range(2000))
    member = gzip.compress(first)
    path.write_bytes(member[: len(member) // 2])  # the process died mid-stream
    text, dropped = repair_gzip(path)
    assert dropped > 0
    assert text and text.endswith(b"\n") and first.startswith(text)
    # the file is now one valid gzip member holding exactly the complete lines
    assert gzip.decompress(path.read_bytes()) == text
    with path.open("ab") as f:  # what a resumed run does
        f.write(gzip.compress(b'{"n": "after"}\n'))
    assert gzip.decompress(path.read_bytes()) == text + b'{"n": "after"}\n'
    again, dropped_again = repair_gzip(path)  # an intact file is left alone
    assert dropped_again == 0 and again == text + b'{"n": "after"}\n'


def test_read_journal_ignores_a_torn_last_line_and_tracks_pending(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    a, b, c = "aa" * 20, "bb" * 20, "cc" * 20
    path.write_text(
        'O\t{"v": 1, "session": 1, "pid": 1, "run_id": "r1"}\n'
        f"S\t{a}\thttp://x/a\tAAA=\n"
        f"S\t{b}\thttp://x/b\tBBB=\n"
        f"D\t{a}\n"
        'K\t{"articles.jsonl": 10}\n'
        f"S\t{c}\thttp://x/c\tCC",  # torn: the process died while writing it
        encoding="utf-8",
    )
    replay = read_journal(path)
    assert replay.sessions == 1 and replay.last_close is None and replay.run_id == "r1"
    assert replay.seen == {bytes.fromhex(a), bytes.fromhex(b)}
    assert replay.pending == {bytes.fromhex(b): "BBB="}
    assert replay.checkpoint == {"articles.jsonl": 10}
    assert replay.intact_bytes < replay.size == path.stat().st_size
    # a damaged line in the middle is not a torn tail: refuse, naming the file and line
    path.write_text(f"S\t{a}\thttp://x/a\tAAA=\nS\tnot-hex\thttp://x/b\tBBB=\nD\t{a}\n", encoding="utf-8")
    with pytest.raises(JournalError, match=rf"{JOURNAL_NAME}:2: unreadable journal line"):
        read_journal(path)


def test_record_key_identifies_records_across_files() -> None:
    article = {"type": "article", "url": "http://x/a.html", "title": "t"}
    link = {"type": "link", "from_url": "http://x/a.html", "list": "related", "position": 2}
    assert record_key(article) == ("article", "http://x/a.html")
    assert record_key(link) == ("link", "http://x/a.html", "related", 2)
    # a rejected record stands for the record it replaced
    assert record_key({"type": "rejected", "record_type": "link", "record": link}) == record_key(link)
    assert record_key({"type": "link", "from_url": "http://x/a.html", "list": None, "position": 0}) is None
    assert record_key({"type": "something"}) is None


def test_journaled_request_round_trips_like_scrapys_own_serialisation() -> None:
    from scrapy import FormRequest, Request

    from snapcrawl.extensions.journal import deserialize_request, request_dict, serialize_request
    from snapcrawl.spiders.snapshots import SnapshotsSpider

    spider = SnapshotsSpider(start_urls="http://127.0.0.1:1/")
    requests = [
        spider.request_for("http://127.0.0.1:1/keji/a.html", priority=5, depth_hint="related"),
        Request("http://127.0.0.1:1/x", callback=lambda r: None),  # not a spider method: Scrapy's path
        FormRequest("http://127.0.0.1:1/f", formdata={"q": "快照"}, callback=spider.parse),
        Request("http://127.0.0.1:1/y", meta={"depth": 3}, dont_filter=True),
    ]
    for request in requests:
        if request.callback is None or hasattr(request.callback, "__self__"):
            assert request_dict(request, spider) == request.to_dict(spider=spider)
    with pytest.raises(ValueError, match="cannot serialise"):  # Scrapy's queue cannot store it either
        serialize_request(requests[1], spider)
    for request in (requests[0], requests[2], requests[3]):
        back = deserialize_request(serialize_request(request, spider), spider)
        assert back.to_dict(spider=spider) == request.to_dict(spider=spider)
        assert type(back) is type(request) and back.callback == request.callback


# ---------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def slow_server() -> Iterator[SlowServer]:
    with SlowServer(build_site()) as srv:
        yield srv


@pytest.fixture(scope="module")
def reference(slow_server: SlowServer, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    from tests.test_resume import fetch_counts

    workdir = tmp_path_factory.mktemp("reference")
    slow_server.delay = 0.0
    session = run_session(workdir, slow_server)
    assert session.returncode == 0, session.log[-3000:]
    return Reference(exported(published_dir(workdir)), fetch_counts(session.requests), workdir)


@pytest.fixture
def slowed(slow_server: SlowServer) -> Iterator[SlowServer]:
    slow_server.delay = DELAY
    yield slow_server
    slow_server.delay = 0.0


# The kill tests run with incremental dedup on (the default): a page whose records a kill lost
# must be exported when it is fetched again, not dropped as "unchanged" against its own run.
NO_INCREMENTAL: dict[str, str] = {}


def kill_points(seed: int, total: int, n: int = 3) -> list[int]:
    """``n`` page counts (per session) at which to kill, drawn with a fixed seed."""
    rng = random.Random(seed)
    return [rng.randint(3, total // 2) for _ in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [20240924])
def test_sigkill_at_three_random_points_then_resume(
    seed: int, reference: Reference, slowed: SlowServer, tmp_path: Path
) -> None:
    pages = sum(n for p, n in reference.fetches.items() if p != "/robots.txt")
    points = kill_points(seed, pages)
    sessions = []
    for i, point in enumerate(points):
        session = run_session(tmp_path, slowed, stop_after=point, sig=signal.SIGKILL, settings=NO_INCREMENTAL)
        sessions.append(session)
        assert session.interrupted, f"crawl {i + 1} ended before its kill point {point}"
        assert session.returncode == -signal.SIGKILL
        assert not (tmp_path / "exports" / "snapshots" / "LATEST").exists()
        if i == 0:
            # what a write cut short by the kill leaves: half a record at the end of a feed
            run_id = (tmp_path / "job" / RUN_ID_FILE).read_text(encoding="utf-8").strip()
            partial = tmp_path / "exports" / "snapshots" / f".{run_id}.partial"
            partial.mkdir(parents=True, exist_ok=True)
            with (partial / "links.jsonl").open("ab") as f:
                f.write(b'{"type": "link", "schema_version": 1, "from_url": "http://torn.example/')
        else:
            assert "did not stop cleanly; recovered from the journal" in session.log

    final = run_session(tmp_path, slowed, settings=NO_INCREMENTAL)
    sessions.append(final)
    assert final.returncode == 0, final.log[-3000:]
    assert "did not stop cleanly; recovered from the journal" in final.log
    got = exported(published_dir(tmp_path))  # every line is complete, valid JSON
    assert not any("torn.example" in (r.get("from_url") or "") for r in got["links"])
    assert_same_records(got, reference.records)
    assert partial_dirs(tmp_path) == []

    # every page of the site was fetched by one session or another
    assert {p for s in sessions for _, p, _ in s.requests} == set(reference.fetches)
    report = json.loads((published_dir(tmp_path) / "report.json").read_text(encoding="utf-8"))
    assert report["resume"]["session"] == len(points) + 1
    assert report["resume"]["recovered_from_crash"] is True
    assert report["records"]["articles"] == len(reference.records["articles"])


@pytest.mark.slow
def test_sigkill_with_gzip_exports(reference: Reference, slowed: SlowServer, tmp_path: Path) -> None:
    """Compressed feeds cannot be flushed mid-run: pages are marked done only at a clean close,
    so a kill re-fetches the session's pages and the truncated gzip member is repaired."""
    gz = {"SNAPCRAWL_EXPORT_GZIP": "1", **NO_INCREMENTAL}
    killed = run_session(tmp_path, slowed, stop_after=40, sig=signal.SIGKILL, settings=gz)
    assert killed.interrupted and killed.returncode == -signal.SIGKILL
    journal = (tmp_path / "job" / JOURNAL_NAME).read_text(encoding="utf-8")
    assert "\nD\t" not in journal  # nothing marked done before the feeds were closed

    final = run_session(tmp_path, slowed, settings=gz)
    assert final.returncode == 0, final.log[-3000:]
    folder = published_dir(tmp_path)
    got = exported(folder, ".jsonl.gz")  # gzip.decompress reads every member: fails on a damaged one
    assert_same_records(got, reference.records)
    assert read_lines(folder / "articles.jsonl.gz")[0]["type"] == "article"


@pytest.mark.slow
def test_page_processed_again_after_a_kill_is_not_unchanged_against_itself(
    reference: Reference, slowed: SlowServer, tmp_path: Path
) -> None:
    """A kill right after the dedup pipeline noted an article, before the article reached the feeds.

    Built deterministically: a clean pause (dedup state of this run committed, pending), then the
    files and journal are put in the state such a kill leaves: the article's records are not in
    the feeds, its page is not marked done, the session did not close. The resumed run must fetch
    the page again and export the article and its links: the dedup state may not call it a copy
    or "unchanged" against its own earlier visit in the same run.
    """
    first = run_session(tmp_path, slowed, stop_after=40, sig=signal.SIGINT)
    assert first.interrupted and first.returncode == 1, first.log[-2000:]
    [partial] = partial_dirs(tmp_path)
    articles = (partial / "articles.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    victim = json.loads(articles[-1])["url"]
    (partial / "articles.jsonl").write_text("".join(articles[:-1]), encoding="utf-8")
    links = (partial / "links.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in links if json.loads(line)["from_url"] != victim]
    assert len(kept) < len(links)
    (partial / "links.jsonl").write_text("".join(kept), encoding="utf-8")
    journal_path = tmp_path / "job" / JOURNAL_NAME
    lines = journal_path.read_text(encoding="utf-8").splitlines(keepends=True)
    [victim_fp] = [line.split("\t")[1] for line in lines if line.startswith("S\t") and line.split("\t")[2] == victim]
    rewritten = []
    for line in lines:
        if line.startswith(("C\t", "K\t")):
            continue  # no clean close; no checkpoint past the removed lines
        if line.startswith("D\t"):
            fps = [fp for fp in line.rstrip("\n").split("\t")[1:] if fp != victim_fp]
            line = "D\t" + "\t".join(fps) + "\n" if fps else ""
        rewritten.append(line)
    journal_path.write_text("".join(rewritten), encoding="utf-8")

    second = run_session(tmp_path, slowed)
    assert second.returncode == 0, second.log[-3000:]
    assert "did not stop cleanly; recovered from the journal" in second.log
    assert_same_records(exported(published_dir(tmp_path)), reference.records)
