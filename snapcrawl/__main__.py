"""``python -m snapcrawl``: operator tools next to ``scrapy crawl``.

python -m snapcrawl extract URL_OR_FILE [--url URL] [--profile NAME] [--explain]
python -m snapcrawl enqueue URL... [--urls-file PATH] [--redis-url URL] [--spider NAME] [--reset]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit


def _load(source: str, url: str | None, timeout: float) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of a local file or a live http(s) URL."""
    if urlsplit(source).scheme in ("http", "https"):
        import urllib.request

        from snapcrawl import __version__

        req = urllib.request.Request(source, headers={"User-Agent": f"snapcrawl/{__version__} (extract)"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return url or resp.geturl(), resp.read(), {k: v for k, v in resp.headers.items()}
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{source}: no such file (give a saved HTML file or an http(s) URL)")
    return url or path.resolve().as_uri().replace("file://", "http://file.local"), path.read_bytes(), {}


def cmd_extract(args: argparse.Namespace) -> int:
    from scrapy.http import HtmlResponse

    from snapcrawl.middlewares.encoding import EncodingMiddleware
    from snapcrawl.pages.snapshot import SnapshotPage
    from snapcrawl.profiles import ProfileRegistry

    page_url, body, headers = _load(args.source, args.url, args.timeout)
    registry = ProfileRegistry.from_dirs(args.profiles_dir or [])
    response = HtmlResponse(url=page_url, body=body, headers=headers)
    response = EncodingMiddleware().process_response(None, response)  # type: ignore[arg-type, assignment]
    fetched = datetime.now(timezone.utc)
    probe = SnapshotPage(response, fetched_at=fetched)
    profile = (
        registry.get(args.profile)
        if args.profile
        else (registry.for_host(urlsplit(page_url).hostname or "") or registry.for_meta(probe.meta))
    )
    page = SnapshotPage(response, profile, fetched_at=fetched) if profile else probe
    result = page.result()
    out: dict[str, object] = {"kind": result.kind, "url": result.url, "profile": profile.name if profile else None}
    if result.article is not None:
        out["record"] = asdict(result.article)
    if args.explain:
        out["explain"] = page.explain() if result.article is not None else {"kind": result.kind}
    if result.problems:
        out["problems"] = result.problems
    json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_enqueue(args: argparse.Namespace) -> int:
    """Push start URLs for distributed workers (docs/distributed.md)."""
    from scrapy.utils.project import get_project_settings

    from snapcrawl.distributed import Keys, connect, enqueue
    from snapcrawl.spiders.snapshots import parse_start_urls

    settings = get_project_settings()
    url = args.redis_url or settings.get("SNAPCRAWL_REDIS_URL")
    if not url:
        raise ValueError("no Redis: pass --redis-url or set SNAPCRAWL_REDIS_URL")
    urls = parse_start_urls(args.urls, args.urls_file)
    client = connect(str(url))
    keys = Keys.from_settings(settings, args.spider)
    result = enqueue(client, keys, urls, reset=args.reset)
    domains = ", ".join(result.domains)
    print(f"enqueued {len(result.pushed)} start URL(s) on {keys.start_urls}; allowed domains: {domains}")
    if result.already_seen:
        print(
            f"note: {keys.dupefilter} already holds {result.already_seen} fingerprints from an earlier crawl; "
            "pages fetched then are not fetched again (pass --reset to crawl from scratch)",
            file=sys.stderr,
        )
    client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snapcrawl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="extract one page and print its record as JSON")
    ex.add_argument("source", help="a saved HTML file or an http(s) URL")
    ex.add_argument("--url", help="the page's URL (for a file: resolves relative links, picks the profile)")
    ex.add_argument("--profile", help="use this site profile (default: picked by domain or page)")
    ex.add_argument("--profiles-dir", action="append", help="extra folder of profile TOML files")
    ex.add_argument("--explain", action="store_true", help="say which rule produced each field")
    ex.add_argument("--timeout", type=float, default=30.0, help="fetch timeout for a URL, seconds")
    enq = sub.add_parser("enqueue", help="push start URLs to Redis for distributed workers")
    enq.add_argument("urls", nargs="*", help="start URLs (canonicalised; their hosts become the allowed domains)")
    enq.add_argument("--urls-file", help="file of start URLs, one per line (# comments)")
    enq.add_argument("--redis-url", help="Redis URL (default: SNAPCRAWL_REDIS_URL)")
    enq.add_argument("--spider", default="snapshots", help="spider whose queue gets the URLs")
    enq.add_argument("--reset", action="store_true", help="forget the queue and seen requests of an earlier crawl")
    args = parser.parse_args(argv)
    from snapcrawl.profiles import ProfileError

    try:
        if args.command == "extract":
            return cmd_extract(args)
        if args.command == "enqueue":
            return cmd_enqueue(args)
    except (OSError, ProfileError, ValueError) as exc:
        print(f"snapcrawl: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
