"""The benchmark harness itself: the generated site, the nginx server, the runners' figures.

Real components throughout: sites are generated to a temporary folder and served by Debian's
nginx on 127.0.0.1; the end-to-end test runs both crawlers for real on a 300-page site.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

import pytest

from benchmarks import extract, generate, profile_crawl, run
from benchmarks.generate import build_corpus, ensure_site, file_for, pager_pages, render_pages
from benchmarks.nginx import LogCounter, NginxServer, parse_log_line

HREF_RE = re.compile(rb'href="([^"]*)"')


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_site(300, tmp_path_factory.mktemp("sites"), log=False)


def _internal_targets(body: bytes) -> list[str]:
    """Site paths a page links to (tracking parameters and fragments cut, as both crawlers do)."""
    out = []
    for href in HREF_RE.findall(body):
        h = href.decode()
        if h.startswith("/"):
            out.append(re.split(r"[?#]", h, maxsplit=1)[0])
    return out


def test_generation_is_deterministic_and_sized() -> None:
    a = [(p, k, hashlib.sha256(b).hexdigest()) for p, k, b in render_pages(build_corpus(300))]
    b = [(p, k, hashlib.sha256(b).hexdigest()) for p, k, b in render_pages(build_corpus(300))]
    assert a == b
    kinds = [k for _, k, _ in a]
    assert len(a) >= 300 and len(a) == build_corpus(300).page_count
    assert kinds.count("home") == 1 and kinds.count("listing") >= 4 and kinds.count("article") > 250
    assert len({p for p, _, _ in a}) == len(a)  # no path rendered twice


def test_every_page_reachable_shallow_and_every_internal_link_served(small_site: Path) -> None:
    manifest = json.loads((small_site / generate.MANIFEST).read_text(encoding="utf-8"))
    paths: dict[str, str] = manifest["paths"]
    depth = {"/": 0}
    queue = deque(["/"])
    while queue:
        path = queue.popleft()
        for target in _internal_targets(file_for(small_site, path).read_bytes()):
            assert target in paths, f"{path} links to {target}, which the site does not serve"
            if target not in depth:
                depth[target] = depth[path] + 1
                queue.append(target)
    assert set(depth) == set(paths)
    assert max(depth.values()) <= 4  # within snapcrawl's DEPTH_LIMIT (10) by a wide margin


def test_articles_carry_the_sample_sites_lists_and_quirks() -> None:
    corpus = build_corpus(2000)
    originals = [a for a in corpus.articles if not a.path.startswith("/zhuanzai/")]
    assert {a.cat for a in originals} == {"keji", "caijing", "shehui", "tiyu"}
    for a in originals:
        assert 4 <= len(a.related) <= 9 and 8 <= len(a.more) <= 15
        assert any(x.title is None for x in a.related) and any(x.title for x in a.related)
    hrefs = [x.href for a in originals for x in a.related if x.internal]
    assert any("?from=related" in h for h in hrefs) and any("utm_source=" in h for h in hrefs)
    assert any(not x.internal for a in originals for x in a.related)  # outside outlets, never fetched
    copies = [a for a in corpus.articles if a.path.startswith("/zhuanzai/")]
    assert len(copies) == 3 and all(c.title.startswith("转载:") for c in copies)
    assert any(not a.declare_charset for a in originals)  # a GBK page with no charset anywhere


def test_pager_links_a_window_every_tenth_page_and_both_ends() -> None:
    assert pager_pages(1, 3) == [1, 2, 3]
    assert pager_pages(57, 120) == sorted({1, 120, *range(10, 121, 10), *range(53, 62)})


def test_ensure_site_reuses_a_complete_tree_and_rebuilds_a_stale_one(tmp_path: Path) -> None:
    root = ensure_site(20, tmp_path, log=False)
    marker = root / "index.html"
    before = marker.stat().st_mtime_ns
    assert ensure_site(20, tmp_path, log=False) == root and marker.stat().st_mtime_ns == before
    manifest = json.loads((root / generate.MANIFEST).read_text(encoding="utf-8"))
    manifest["version"] = -1
    (root / generate.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    ensure_site(20, tmp_path, log=False)
    assert json.loads((root / generate.MANIFEST).read_text(encoding="utf-8"))["version"] == generate.GENERATOR_VERSION
    with pytest.raises(ValueError, match="pages=5"):
        ensure_site(5, tmp_path, log=False)


def test_nginx_serves_the_exact_bytes_logs_every_request_and_stops(small_site: Path) -> None:
    manifest = json.loads((small_site / generate.MANIFEST).read_text(encoding="utf-8"))
    some = [*sorted(p for p, k in manifest["paths"].items() if k == "article")[:3], "/", "/tiyu/"]
    server = NginxServer(small_site).start()
    try:
        start = server.log_offset()
        counter = LogCounter(server.access_log, start)
        for path in some:
            with urllib.request.urlopen(server.url + path + "?from=related") as r:
                assert r.read() == file_for(small_site, path).read_bytes()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "/no/such/page.html")
        assert err.value.code == 404
        want = [(200, p) for p in some] + [(404, "/no/such/page.html")]
        deadline = time.monotonic() + 5  # nginx writes its access log line just after the response
        while True:
            lines = server.read_log(start)
            if len(lines) >= len(want) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [(x.status, x.uri.split("?")[0]) for x in lines] == want
        assert counter.poll() == len(some) + 1
        proc, tmp = server.proc, server.tmp
    finally:
        server.stop()
    assert proc is not None and proc.poll() is not None and not tmp.exists()


def test_log_parsing_counts_complete_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"1.000 200 /a\n1.001 404 /b\n1.002 200 /c")  # last line still being written
    counter = LogCounter(log, 0)
    assert counter.poll() == 2
    with log.open("ab") as f:
        f.write(b"\n")
    assert counter.poll() == 3
    line = parse_log_line("1732500000.123 200 /keji/?from=x y\n")
    assert line is not None and (line.t, line.status, line.uri) == (1732500000.123, 200, "/keji/?from=x y")
    assert parse_log_line("garbage") is None


def test_rss_milestones_use_the_first_sample_past_the_mark() -> None:
    crawl = run.CrawlRun(
        name="x",
        returncode=0,
        wall_s=1,
        cpu_s=1,
        peak_rss_kb=300,
        requests=30,
        pages_ok=30,
        crawl_s=1,
        pages_per_s=30,
        pages_per_cpu_s=30,
        status_counts={"200": 30},
        load_avg=(0.0, 0.0),
        paths=set(),
        samples=[run.Sample(0.1, 0, 90), run.Sample(0.2, 8, 100), run.Sample(0.3, 12, 110), run.Sample(0.4, 29, 120)],
    )
    assert crawl.rss_at(10) == (12, 110)
    assert crawl.rss_at(30) == (29, 120)  # never reached: the last sample, with its page count


def test_profile_summary_from_collapsed_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        "main (/x/lib/python3.11/runpy.py:1);parse (/repo/snapcrawl/spiders/snapshots.py:5);"
        "normalize_space (/repo/snapcrawl/processors.py:9) 30\n"
        "main (/x/lib/python3.11/runpy.py:1);parse (/repo/snapcrawl/spiders/snapshots.py:5);"
        "parse (/repo/snapcrawl/spiders/snapshots.py:5) 10\n"
        "main (/x/lib/python3.11/runpy.py:1);iter_errors (/v/site-packages/jsonschema/validators.py:3) 60\n",
        encoding="utf-8",
    )
    s = profile_crawl.summarise(profile_crawl.pyspy_stacks(raw))
    assert dict(s["by_component"]) == {
        "jsonschema": 0.6,
        "snapcrawl.processors": 0.3,
        "snapcrawl.spiders.snapshots": 0.1,
    }
    # inclusive: the recursive parse counts once (40 %, not 50 %); main holds everything and is left out
    assert dict(s["top_inclusive"]) == {
        "jsonschema:iter_errors": 0.6,
        "snapcrawl.spiders.snapshots:parse": 0.4,
        "snapcrawl.processors:normalize_space": 0.3,
    }


@pytest.mark.slow
def test_run_measures_both_crawlers_on_the_same_pages(small_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    code = run.main(
        [
            "--pages",
            "300",
            "--site-dir",
            str(small_site.parent),
            "--server-seconds",
            "1",
            "--json",
            str(out),
            "--out-dir",
            str(tmp_path),
        ]
    )
    result = json.loads(out.read_text(encoding="utf-8"))
    manifest = json.loads((small_site / generate.MANIFEST).read_text(encoding="utf-8"))
    runs = result["runs"]
    assert code == 0, runs.get("snapcrawl", {}).get("stderr_tail")
    assert set(runs) == {"bare", "snapcrawl"}
    for r in runs.values():
        assert r["requests"] == r["pages_ok"] == manifest["pages"]  # every page once, all 200
        assert r["pages_per_s"] > 0 and r["pages_per_cpu_s"] > 0 and r["peak_rss_kb"] > 10_000
        assert r["rss_at"]["75"][0] >= 75
    assert not [v for v in result["verdict"] if v.startswith("WARNING")], result["verdict"]
    assert result["server"]["check"]["requests_per_s"] > 5 * runs["bare"]["pages_per_s"]
    assert result["figures"]["ratio"] == pytest.approx(
        runs["snapcrawl"]["pages_per_s"] / runs["bare"]["pages_per_s"], abs=1e-3
    )
    articles = manifest["by_kind"]["article"]
    records = runs["snapcrawl"]["extra"]["records"]
    assert records["articles"] == articles and records["rejected"] == 0 and records["links"] > 10 * articles


def test_extract_times_three_extractors_and_checks_them(small_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "extract.json"
    assert (
        extract.main(
            [
                "--pages",
                "300",
                "--site-dir",
                str(small_site.parent),
                "--sample",
                "12",
                "--repeat",
                "1",
                "--json",
                str(out),
                "--out-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    results = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert set(results) == {"profiled", "generic", "trafilatura", "parse only"}
    for name in ("profiled", "generic"):
        assert results[name]["pages"] == 12 and results[name]["mean_ms"] > 0
        assert results[name]["correct"] == {
            "title": 1.0,
            "body": 1.0,
            "published_at": 1.0,
            "source": 1.0,
            "related": 1.0,
            "more_in_category": 1.0,
        }
    assert results["trafilatura"]["correct"]["title"] == 1.0
    assert results["parse only"]["mean_ms"] < results["profiled"]["mean_ms"]
