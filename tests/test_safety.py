"""Safe by default: http(s) only, no private networks, no off-site fetches, profiles are data."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scrapy.http import Request
from scrapy.utils.test import get_crawler

from snapcrawl.middlewares.safety import (
    NetworkSafetyMiddleware,
    UnsafeRequest,
    literal_ip,
    looks_binary,
    non_public_reason,
)
from snapcrawl.profiles import ProfileError, ProfileRegistry, load_profile
from snapcrawl.sample.faults import FaultPlan, FaultyServer
from snapcrawl.sample.site import Site
from tests.conftest import ROOT, SCRAPY, CrawlResult, run_crawl

# ---------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_non_public_addresses_are_named(address: str, reason: str | None) -> None:
    assert non_public_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0x7f.1", "127.0.0.1"),  # hex + short form
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("[::1]", "::1"),
        ("10.0.0.5", "10.0.0.5"),
        ("example.com", None),
        ("deadbeef.cafe", None),
    ],
)
def test_literal_ip_reads_every_form_clients_accept(host: str, ip: str | None) -> None:
    got = literal_ip(host)
    assert (str(got) if got is not None else None) == ip


def _refusal(url: str, **settings: object) -> UnsafeRequest | None:
    """What NetworkSafetyMiddleware does with ``url`` (a real crawler's settings; literal hosts need no DNS)."""
    mw = NetworkSafetyMiddleware.from_crawler(get_crawler(settings_dict=dict(settings)))
    try:
        asyncio.run(mw.process_request(Request(url)))
    except UnsafeRequest as exc:
        return exc
    return None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.5:8080/admin",
        "https://169.254.169.254/latest/meta-data/",
        "http://[::1]:6379/",
        "http://2130706433/",
        "http://0x7f.1/",
    ],
)
def test_private_literal_addresses_are_refused(url: str) -> None:
    exc = _refusal(url)
    assert exc is not None and exc.snapcrawl_kind == "private_address"
    assert "SNAPCRAWL_ALLOW_PRIVATE_NETWORKS" in str(exc) and url in str(exc)
    assert _refusal(url, SNAPCRAWL_ALLOW_PRIVATE_NETWORKS=True) is None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://8.8.8.8/x", "gopher://8.8.8.8/", "data:text/html,hi"])
def test_only_http_and_https_are_fetched(url: str) -> None:
    exc = _refusal(url, SNAPCRAWL_ALLOW_PRIVATE_NETWORKS=True)  # even when private networks are allowed
    assert exc is not None and exc.snapcrawl_kind == "unsafe_scheme"


def test_public_literal_address_passes() -> None:
    assert _refusal("http://8.8.8.8/") is None


def test_binary_bodies_are_told_from_text(site: Site) -> None:
    for path, page in site.pages.items():
        assert not looks_binary(page.body), path  # UTF-8 and GBK pages, robots.txt
    rng = random.Random(1)
    assert looks_binary(rng.randbytes(5000))
    assert looks_binary(b"\x89PNG\r\n\x1a\n" + b"a" * 500)
    assert looks_binary(b"%PDF-1.7\n" + b"a" * 500)
    assert not looks_binary("<p>中文</p>".encode("utf-16"))  # BOM: a wide encoding, not binary
    assert not looks_binary(b"")


# ---------------------------------------------------------------------- end to end


@dataclass
class Hosted:
    result: CrawlResult
    server: FaultyServer

    @property
    def failed(self) -> dict[str, str]:
        return {f["url"]: f["error"] for f in self.result.report()["errors"]["failed_pages"]}


def crawl_under_names(tmp_path: Path, site: Site, **settings: str) -> Hosted:
    """Crawl ``http://site.test:PORT/``; ``site.test`` and ``cdn.site.test`` both resolve to 127.0.0.1
    (through :class:`~snapcrawl.sample.faults.HostsResolver`), and the home page links to
    ``cdn.site.test`` (in scope: a subdomain), to the cloud metadata address, to ``localhost`` and to
    a subdomain that does not resolve."""
    with FaultyServer(site, FaultPlan()) as srv:
        port = srv.port
        srv.plan.home_links = (
            f"http://cdn.site.test:{port}/internal/admin",
            "http://169.254.169.254/latest/meta-data/",
            f"http://localhost:{port}/keji/",
            f"http://nowhere.site.test:{port}/x",  # in scope, but no such name
        )
        result = run_crawl(
            tmp_path,
            start_urls=f"http://site.test:{port}/",
            settings={
                "TWISTED_DNS_RESOLVER": "snapcrawl.sample.faults.HostsResolver",
                "SNAPCRAWL_SAMPLE_HOSTS": "site.test=127.0.0.1,cdn.site.test=127.0.0.1",
                **settings,
            },
        )
    return Hosted(result, srv)


@pytest.fixture(scope="module")
def default_safety(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[Hosted]:
    yield crawl_under_names(tmp_path_factory.mktemp("safety"), site)


def test_in_scope_host_resolving_to_a_private_address_is_refused(default_safety: Hosted, site: Site) -> None:
    result, srv = default_safety.result, default_safety.server
    assert result.returncode == 0, result.stderr[-3000:]
    admin = f"http://cdn.site.test:{srv.port}/internal/admin"
    assert default_safety.failed[admin] == "private_address"
    assert "cdn.site.test resolves to 127.0.0.1, a loopback address" in result.stderr
    # not one request went to that name, robots.txt included
    assert set(srv.hosts) == {"site.test"}
    assert not [p for _, p, _ in srv.request_log if p.startswith("/internal/")]
    report = result.report()
    network = report["robustness"]["network"]
    assert network == {
        "allow_private_networks": False,
        "exempt_start_hosts": {"site.test": "127.0.0.1"},
        "refused": {"private_address": 1},
    }
    # a name that does not resolve is a DNS failure (retried, then reported), not a refusal
    assert default_safety.failed[f"http://nowhere.site.test:{srv.port}/x"] == "dns_error"
    # the start URL's own host is private too, and is crawled: the operator named it
    assert {a["url"] for a in result.records("articles")} == {
        f"http://site.test:{srv.port}{p}" for p in site.article_paths()
    }


def test_offsite_links_are_never_fetched(default_safety: Hosted) -> None:
    result, srv = default_safety.result, default_safety.server
    assert "localhost" not in srv.hosts and "169.254.169.254" not in srv.hosts
    stats = result.report()["scrapy_stats"]
    assert stats["snapcrawl/links/offsite"] >= 2
    assert not [u for u in default_safety.failed if "169.254" in u or "localhost" in u]  # not even tried


def test_allow_private_networks_setting_lifts_the_rule(tmp_path: Path, site: Site) -> None:
    hosted = crawl_under_names(tmp_path, site, SNAPCRAWL_ALLOW_PRIVATE_NETWORKS="1")
    assert hosted.result.returncode == 0, hosted.result.stderr[-3000:]
    admin = f"http://cdn.site.test:{hosted.server.port}/internal/admin"
    assert hosted.failed[admin] == "http_404"  # fetched: the sample site has no such page
    assert hosted.server.hosts["cdn.site.test"] == 2  # robots.txt, then the page
    assert hosted.result.report()["robustness"]["network"]["refused"] == {}


# ---------------------------------------------------------------------- profiles are data


def test_profile_is_parsed_as_data_and_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"""
name = "hostile"
description = "__import__('os').system('touch {marker}')"
domains = ["$(touch {marker}).example", "`touch {marker}`.example"]
timezone = "Asia/Shanghai"
[fields]
title = {{ css = "h1.title::text", regex = '(?P<x>.*)' }}
source = "div.info"
[labels]
source = ["{{{{7*7}}}}", "${{jndi:ldap://x}}", "!!python/object/apply:os.system ['touch {marker}']"]
"""
    path = tmp_path / "hostile.toml"
    path.write_text(hostile, encoding="utf-8")
    profile = load_profile(path)
    assert not marker.exists()
    assert profile.description == f"__import__('os').system('touch {marker}')"  # a string, kept verbatim
    assert profile.labels["source"][0] == "{{7*7}}"
    assert profile.domains[0].startswith("$(touch")
    # Python source is not TOML: it fails to parse, naming the file, and nothing runs
    code = tmp_path / "code.toml"
    code.write_text(f"import os\nos.system('touch {marker}')\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=f"^{code}: not valid TOML"):
        load_profile(code)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('name = "x"\ncolour = "red"\n', "colour"),
        ('name = "x"\n[fields]\ntitle = { css = "h1[" }\n', "fields.title.css"),
        ('name = "x"\n[fields]\nheadline = "h1"\n', "fields.headline"),
        ('name = "x"\n[fields]\ntitle = { css = "h1", xpath = "//h1" }\n', "fields.title"),
        ('name = "x"\n[fields.body]\nxpath = "//div[@"\n', "fields.body.xpath"),
        ('name = "x"\n[links]\narticle = "([a-z"\n', "links.article"),
        ('name = "x"\ntimezone = "Mars/Olympus"\n', "timezone"),
        ('name = "x"\nrender_js = "yes"\n', "render_js"),
        ('name = "x"\n[crawl]\ndownload_delay = -1\n', "crawl.download_delay"),
        ('name = "x"\n[lists.related]\ntitle = "a"\n', "lists.related.entries"),
        ("name = ", None),  # not TOML at all
    ],
)
def test_malformed_profile_fails_naming_file_and_key(tmp_path: Path, text: str, key: str | None) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        ProfileRegistry.from_dirs([tmp_path])
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert (f"key '{key}'" in message) if key else ("not valid TOML" in message), message


def test_crawl_refuses_to_start_with_a_malformed_profile(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('name = "bad"\n[fields]\ntitle = { css = "h1[" }\n', encoding="utf-8")
    proc = subprocess.run(
        [*SCRAPY, "crawl", "snapshots", "-a", "start_urls=http://127.0.0.1:9/", "-s",
         f"SNAPCRAWL_PROFILES_DIRS={tmp_path}", "-s", f"SNAPCRAWL_EXPORT_URI={tmp_path / 'exports'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{tmp_path / 'bad.toml'}: key 'fields.title.css': invalid CSS selector" in proc.stderr
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").rglob("*.jsonl"))
