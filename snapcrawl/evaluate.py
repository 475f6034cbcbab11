"""Score the extractor on saved pages with hand-written expected records.

    python -m snapcrawl.evaluate [DIR ...] [--profile NAME] [--verbose] [--min-accuracy 0.98]

Each page is ``NAME.html`` (raw bytes as served) beside ``NAME.json`` holding ``url``,
``fetched_at``, ``headers`` and ``expected`` (``{"kind": "listing"}`` for a list page).
Every scalar field counts once, every list entry's title/url/snippet/published_at once
each, plus each list's length; a listing page counts once (no article may come out).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scrapy.http import HtmlResponse

from snapcrawl.middlewares.encoding import EncodingMiddleware
from snapcrawl.pages.snapshot import SnapshotPage
from snapcrawl.profiles import Profile, ProfileRegistry

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "templates"
SCALARS = ("title", "category", "published_at", "published_at_raw", "source", "reposted_from", "body", "language")
SNAPSHOT = ("collector", "captured_at", "captured_at_raw", "original_url", "disclaimer", "notice")
ENTRY = ("title", "url", "snippet", "published_at")


@dataclass
class PageScore:
    path: str
    right: int = 0
    total: int = 0
    wrong: list[str] = field(default_factory=list)

    def check(self, name: str, got: Any, want: Any) -> None:
        self.total += 1
        if got == want:
            self.right += 1
        else:
            self.wrong.append(f"{name}: got {got!r}, want {want!r}")


def load_page(html_path: Path) -> tuple[dict[str, Any], HtmlResponse]:
    meta = json.loads(html_path.with_suffix(".json").read_text(encoding="utf-8"))
    response = HtmlResponse(url=meta["url"], body=html_path.read_bytes(), headers=meta.get("headers") or {})
    response = EncodingMiddleware().process_response(None, response)  # type: ignore[arg-type,assignment]
    return meta, response


def extract(html_path: Path, profile: Profile | None = None) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """(fixture meta, kind, record or None) for one saved page."""
    meta, response = load_page(html_path)
    fetched = datetime.fromisoformat(meta["fetched_at"])
    result = SnapshotPage(response, profile, fetched_at=fetched).result()
    return meta, result.kind, asdict(result.article) if result.article else None


#: The fields the project's held-out evaluation names: scalars, snapshot provenance, related
#: titles and URLs, and the more-in-category count (``--fields judged``).
JUDGED_SCALARS = ("title", "category", "published_at", "source", "reposted_from", "body")
JUDGED_SNAPSHOT = ("collector", "captured_at", "original_url")


def score_page(html_path: Path, profile: Profile | None = None, *, judged: bool = False) -> PageScore:
    meta, kind, record = extract(html_path, profile)
    want = meta["expected"]
    score = PageScore(str(html_path))
    if want.get("kind", "article") != "article":
        score.check("kind", kind, want["kind"])
        return score
    score.check("kind", kind, "article")
    rec = record or {}
    if judged:
        snap = rec.get("snapshot") or {}
        for f in JUDGED_SCALARS:
            score.check(f, rec.get(f), want.get(f))
        for f in JUDGED_SNAPSHOT:
            score.check(f"snapshot.{f}", snap.get(f), want["snapshot"].get(f))
        got_rel = rec.get("related") or []
        for i, entry in enumerate(want.get("related", [])):
            got_entry = got_rel[i] if i < len(got_rel) else {}
            score.check(f"related[{i}].title", got_entry.get("title"), entry.get("title"))
            score.check(f"related[{i}].url", got_entry.get("url"), entry.get("url"))
        score.check(
            "more_in_category.count", len(rec.get("more_in_category") or []), len(want.get("more_in_category", []))
        )
        return score
    for f in SCALARS:
        if f in want:
            score.check(f, rec.get(f), want[f])
    snap = rec.get("snapshot") or {}
    for f in SNAPSHOT:
        if f in want.get("snapshot", {}):
            score.check(f"snapshot.{f}", snap.get(f), want["snapshot"][f])
    for lname in ("related", "more_in_category"):
        if lname not in want:
            continue
        got_list = rec.get(lname) or []
        score.check(f"{lname}.count", len(got_list), len(want[lname]))
        for i, entry in enumerate(want[lname]):
            got_entry = got_list[i] if i < len(got_list) else {}
            for f in ENTRY:
                score.check(f"{lname}[{i}].{f}", got_entry.get(f), entry.get(f))
    return score


def pages_in(dirs: list[Path]) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        out.extend(sorted(p for p in d.rglob("*.html") if p.with_suffix(".json").exists()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m snapcrawl.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("dirs", nargs="*", type=Path, help=f"fixture folders (default: {DEFAULT_DIR})")
    ap.add_argument("--profile", help="extract with this profile (default: none, the generic extractor)")
    ap.add_argument("--verbose", "-v", action="store_true", help="list every wrong field")
    ap.add_argument("--min-accuracy", type=float, default=0.0, help="exit 1 when accuracy is below this")
    ap.add_argument(
        "--fields",
        choices=("all", "judged"),
        default="all",
        help="all: every field and list entry; judged: the held-out evaluation's fields only",
    )
    args = ap.parse_args(argv)
    dirs = args.dirs or [DEFAULT_DIR]
    for d in dirs:
        if not d.is_dir():
            print(f"snapcrawl.evaluate: error: {d} is not a folder", file=sys.stderr)
            return 2
    profile = ProfileRegistry.from_dirs().get(args.profile) if args.profile else None
    pages = pages_in(dirs)
    if not pages:
        print("snapcrawl.evaluate: error: no NAME.html + NAME.json pages found", file=sys.stderr)
        return 2
    right = total = 0
    by_field: Counter[str] = Counter()
    for page in pages:
        s = score_page(page, profile, judged=args.fields == "judged")
        right += s.right
        total += s.total
        status = "ok " if not s.wrong else "ERR"
        print(f"{status} {s.right:3d}/{s.total:<3d} {page.relative_to(page.parents[1])}")
        for w in s.wrong:
            by_field[w.split(":", 1)[0].split("[")[0]] += 1
            if args.verbose:
                print(f"      {w[:300]}")
    acc = right / total if total else 0.0
    print(f"\nfield accuracy: {right}/{total} = {acc:.2%} over {len(pages)} pages")
    if by_field:
        print("wrong by field: " + ", ".join(f"{k} {v}" for k, v in by_field.most_common()))
    return 1 if acc < args.min_accuracy else 0


if __name__ == "__main__":
    sys.exit(main())
