"""``python -m snapcrawl``: operator tools next to ``scrapy crawl``.

python -m snapcrawl extract URL_OR_FILE [--url URL] [--profile NAME] [--explain]
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
    args = parser.parse_args(argv)
    from snapcrawl.profiles import ProfileError

    try:
        if args.command == "extract":
            return cmd_extract(args)
    except (OSError, ProfileError, ValueError) as exc:
        print(f"snapcrawl: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
