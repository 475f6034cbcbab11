"""JavaScript-built pages: rendered through Debian's Chromium when asked, never otherwise."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site, build_site
from tests.conftest import FAST, ROOT, CrawlResult

SAMPLE_PROFILE = ROOT / "snapcrawl" / "profiles" / "sample.toml"


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant process of ``pid`` with its command line (from /proc)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, ppid in parent.items():
            if ppid == current and child not in found:
                try:
                    cmd = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    cmd = "?"
                found[child] = cmd
                frontier.append(child)
    return found


def monitored_crawl(
    tmp_path: Path, start_urls: str, *args: str, settings: dict[str, str] | None = None
) -> tuple[CrawlResult, set[str]]:
    """``scrapy crawl snapshots`` like tests.conftest.run_crawl, plus every child process it started."""
    merged = {
        **FAST,
        "SNAPCRAWL_EXPORT_URI": str(tmp_path / "exports"),
        "SNAPCRAWL_STATE_PATH": str(tmp_path / "state.sqlite"),
        **(settings or {}),
    }
    cmd = [sys.executable, "-m", "scrapy", "crawl", "snapshots", "-a", f"start_urls={start_urls}", *args]
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    seen: set[str] = set()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(descendants(proc.pid).values())
            time.sleep(0.03)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        done.set()
        watcher.join()
    return CrawlResult(proc.returncode, out, err, tmp_path / "exports"), seen


def browser_processes(seen: set[str]) -> set[str]:
    return {c for c in seen if "chrom" in c or "playwright" in c or "node" in c.split(" ")[0]}


def stats(result: CrawlResult) -> dict[str, Any]:
    return result.report()["scrapy_stats"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def js_site() -> Site:
    return build_site(variant="js")


@pytest.fixture(scope="module")
def js_server(js_site: Site) -> Iterator[SampleServer]:
    with SampleServer(js_site) as srv:
        yield srv


@pytest.fixture(scope="module")
def plain_crawl(tmp_path_factory: pytest.TempPathFactory, js_server: SampleServer) -> tuple[CrawlResult, set[str]]:
    """The whole site, 专题 section included, crawled without rendering."""
    return monitored_crawl(tmp_path_factory.mktemp("plain"), js_server.url + "/")


def _js_profile(tmp_path: Path) -> Path:
    text = SAMPLE_PROFILE.read_text(encoding="utf-8")
    text = text.replace('name = "sample"', 'name = "sample-js"').replace("render_js = false", "render_js = true")
    text = text.split("[crawl]")[0] + "[crawl]\nrender_js_wait = 0.2\n"
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "js.toml").write_text(text, encoding="utf-8")
    return tmp_path / "profiles"


def assert_js_articles_complete(result: CrawlResult, site: Site, base: str) -> None:
    articles = {a["url"]: a for a in result.records("articles")}
    assert {base + p for p in site.js_article_paths()} <= set(articles)
    for path in site.js_article_paths():
        got, want = articles[base + path], site.expected(path, base)
        assert got["body"] == "\n\n".join(want["body"]), path  # the text the script inserted
        for f in ("title", "category", "published_at", "source", "snapshot"):
            assert got[f] == want[f], (path, f)
        assert got["category"] == "专题"


@pytest.mark.parametrize("how", ["argument", "profile"])
def test_js_articles_rendered_complete(tmp_path: Path, js_server: SampleServer, js_site: Site, how: str) -> None:
    if how == "argument":
        args: tuple[str, ...] = ("-a", "render=1")
        settings = {"DEPTH_LIMIT": "1"}
    else:  # render_js = true in a profile, picked with -a profile=NAME
        args = ("-a", "profile=sample-js")
        settings = {"DEPTH_LIMIT": "1", "SNAPCRAWL_PROFILES_DIRS": str(_js_profile(tmp_path))}
    result, seen = monitored_crawl(tmp_path, js_server.url + "/js/", *args, settings=settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_js_articles_complete(result, js_site, js_server.url)
    s = stats(result)
    # Chromium ran (Debian's binary), for the article pages only: listings went plain
    assert s["playwright/browser_count"] == 1
    assert s["playwright/request_count/navigation"] == len(js_site.js_article_paths())
    assert any("/usr/bin/chromium" in c or "/usr/lib/chromium/chromium" in c for c in seen), sorted(seen)[:5]
    assert result.report()["pages"]["fetched"] > len(js_site.js_article_paths())  # + /js/ and the nav listings


def test_plain_crawl_never_starts_a_browser(plain_crawl: tuple[CrawlResult, set[str]]) -> None:
    result, seen = plain_crawl
    assert result.returncode == 0, result.stderr[-3000:]
    assert browser_processes(seen) == set()
    assert not [k for k in stats(result) if k.startswith("playwright/")]
    assert "Launching browser" not in result.stderr


def test_plain_crawl_still_exports_the_html_articles(
    plain_crawl: tuple[CrawlResult, set[str]], js_site: Site, js_server: SampleServer
) -> None:
    result, _ = plain_crawl
    exported = {a["url"] for a in result.records("articles")}
    html_only = set(js_site.article_paths()) - set(js_site.js_article_paths())
    assert {js_server.url + p for p in html_only} <= exported


def test_js_articles_without_rendering_are_incomplete(
    plain_crawl: tuple[CrawlResult, set[str]], js_site: Site, js_server: SampleServer
) -> None:
    result, _ = plain_crawl
    js_urls = {js_server.url + p for p in js_site.js_article_paths()}
    assert not js_urls & {a["url"] for a in result.records("articles")}  # not exported with an empty body
    report = result.report()
    failed = {f["url"]: f for f in report["errors"]["failed_pages"]}
    for url in js_urls:
        assert failed[url]["error"] == "incomplete_no_body"
        assert "-a render=1" in failed[url]["message"]
    assert stats(result)["snapcrawl/pages/incomplete"] == len(js_urls)


def test_incomplete_start_page_is_fetched_again_through_chromium(
    tmp_path: Path, js_server: SampleServer, js_site: Site
) -> None:
    # start URLs are fetched plain (their profile is not known yet); an article page that comes
    # back without body is fetched once more, rendered
    starts = ",".join(js_server.url + p for p in js_site.js_article_paths())
    result, _ = monitored_crawl(tmp_path, starts, "-a", "render=1", settings={"DEPTH_LIMIT": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert_js_articles_complete(result, js_site, js_server.url)
    assert stats(result)["snapcrawl/render/refetched_incomplete"] == len(js_site.js_article_paths())


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A server on another private host that a hostile page points the browser at."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = b"document.body.insertAdjacentHTML('beforeend', '<p>INTRANET-SECRET</p>')"
        self.send_response(200)
        self.send_header("Content-Type", "application/javascript")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_rendered_page_cannot_reach_other_private_hosts(tmp_path: Path, js_site: Site) -> None:
    # The rendered page may fetch from its own (vetted) host, which builds its body; a script it
    # asks for on another private address (an intranet service, a cloud metadata endpoint) is
    # refused by the browser as Scrapy's own requests are, unless private networks are allowed.
    intranet = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Recorder)
    threading.Thread(target=intranet.serve_forever, daemon=True).start()
    site = build_site(variant="js")
    path = site.js_article_paths()[0]
    page = site.pages[path]
    tag = f'<script src="http://127.0.0.2:{intranet.server_address[1]}/probe.js"></script></body>'.encode()
    site.pages[path] = replace(page, body=page.body.replace(b"</body>", tag, 1))
    try:
        with SampleServer(site) as srv:
            one = {"DEPTH_LIMIT": "1"}
            guarded, _ = monitored_crawl(tmp_path / "guarded", srv.url + path, "-a", "render=1", settings=one)
            assert guarded.returncode == 0, guarded.stderr[-3000:]
            assert _Recorder.seen == []
            article = next(a for a in guarded.records("articles") if a["url"] == srv.url + path)
            assert article["body"] == "\n\n".join(site.expected(path, srv.url)["body"])  # own host: allowed
            assert "INTRANET-SECRET" not in article["body"]
            assert f"browser request not made: http://127.0.0.2:{intranet.server_address[1]}/probe.js" in guarded.stderr
            # the operator's switch lifts it, as for Scrapy's requests
            allowed, _ = monitored_crawl(
                tmp_path / "allowed",
                srv.url + path,
                "-a",
                "render=1",
                settings={**one, "SNAPCRAWL_ALLOW_PRIVATE_NETWORKS": "1"},
            )
            assert allowed.returncode == 0, allowed.stderr[-3000:]
            assert _Recorder.seen == ["/probe.js"]  # the browser made the request this time
    finally:
        intranet.shutdown()
