"""Precision and recall of near-duplicate detection on the labelled set, at several thresholds.

``python -m snapcrawl.dedup.evaluate`` (from the project root) reads
``tests/fixtures/neardup`` (documents + labelled pairs: copies with 0-30 % of the text edited,
and unrelated articles on the same topic, Chinese and English) and decides each pair the way
the dedup pipeline does: same content hash, or sharing an LSH band and a MinHash similarity
at or above the threshold. It also reports the bundled sample site's pairs, whose articles
are built from shared sentence templates (unrelated stories there are unusually similar).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from snapcrawl.dedup import DEFAULT_NEAR_DUP_THRESHOLD
from snapcrawl.dedup.minhash import Signer, similarity
from snapcrawl.processors import content_hash

DEFAULT_SET = Path("tests/fixtures/neardup")
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)


@dataclass(frozen=True)
class Scored:
    """One labelled pair with what the detector sees."""

    label: bool
    lang: str
    kind: str
    edit: float | None
    similarity: float
    candidate: bool  # shares an LSH band (or the content hash)


@dataclass(frozen=True)
class Row:
    threshold: float
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise SystemExit(f"evaluate: cannot read {path}: {exc.strerror or exc}") from exc


def score_pairs(docs: dict[str, dict[str, Any]], pairs: Sequence[dict[str, Any]], signer: Signer) -> list[Scored]:
    """MinHash similarity and LSH candidacy of every labelled pair."""
    sigs: dict[str, np.ndarray | None] = {}
    bands: dict[str, set[int]] = {}
    hashes: dict[str, str] = {}
    for key, d in docs.items():
        sig = signer.signature(d["title"], d["body"], d.get("lang"))
        sigs[key] = sig
        bands[key] = set(signer.band_keys(sig)) if sig is not None else set()
        hashes[key] = content_hash(d["title"], d["body"])
    out: list[Scored] = []
    for p in pairs:
        a, b = p["a"], p["b"]
        sa, sb = sigs[a], sigs[b]
        exact = hashes[a] == hashes[b]
        sim = 1.0 if exact else (similarity(sa, sb) if sa is not None and sb is not None else 0.0)
        out.append(
            Scored(
                bool(p["label"]),
                p.get("lang", ""),
                p.get("kind", ""),
                p.get("edit"),
                sim,
                exact or bool(bands[a] & bands[b]),
            )
        )
    return out


def table(scored: Sequence[Scored], thresholds: Sequence[float]) -> list[Row]:
    rows = []
    for t in thresholds:
        predicted = [s.candidate and s.similarity >= t for s in scored]
        tp = sum(1 for s, p in zip(scored, predicted, strict=True) if p and s.label)
        fp = sum(1 for s, p in zip(scored, predicted, strict=True) if p and not s.label)
        fn = sum(1 for s, p in zip(scored, predicted, strict=True) if not p and s.label)
        rows.append(Row(t, tp, fp, fn))
    return rows


def sample_site_pairs(signer: Signer) -> tuple[float, float, str]:
    """(similarity of the sample site's near-duplicate pair, highest similarity of any other pair, that pair)."""
    from snapcrawl.sample.site import build_site

    site = build_site(2)
    sigs: dict[str, np.ndarray] = {}
    for path in site.article_paths():
        a = site.article(path)
        sig = signer.signature(a.title, "\n\n".join(b.text for b in a.blocks), "zh")
        if sig is not None:
            sigs[path] = sig
    original, copy = site.near_duplicate_pairs()[0]
    near = similarity(sigs[original], sigs[copy])
    worst, pair = 0.0, ""
    for x, y in combinations(sorted(sigs), 2):
        if {x, y} != {original, copy}:
            sim = similarity(sigs[x], sigs[y])
            if sim > worst:
                worst, pair = sim, f"{x} ~ {y}"
    return near, worst, pair


def report(set_dir: Path, thresholds: Sequence[float], default: float, sample: bool = True) -> tuple[str, Row]:
    """The printed report, and the row at the default threshold."""
    docs = {d["id"]: d for d in _load_jsonl(set_dir / "docs.jsonl")}
    pairs = _load_jsonl(set_dir / "pairs.jsonl")
    signer = Signer()
    scored = score_pairs(docs, pairs, signer)
    ths = sorted({*thresholds, default})
    rows = table(scored, ths)
    by_lang = {lang: table([s for s in scored if s.lang == lang], ths) for lang in ("zh", "en")}
    pos = [s for s in scored if s.label]
    neg = [s for s in scored if not s.label]
    lines = [
        f"labelled set {set_dir}: {len(docs)} documents, {len(pairs)} pairs "
        f"({len(pos)} copies with 0-30 % of the text edited, {len(neg)} unrelated same-topic pairs; zh + en)",
        "",
        "threshold  precision  recall    TP   FP   FN   zh P/R        en P/R",
    ]
    default_row = rows[0]
    for i, r in enumerate(rows):
        zh, en = by_lang["zh"][i], by_lang["en"][i]
        mark = "  <- default" if abs(r.threshold - default) < 1e-9 else ""
        if mark:
            default_row = r
        lines.append(
            f"{r.threshold:9.2f}  {r.precision:9.3f}  {r.recall:6.3f}  {r.tp:4d} {r.fp:4d} {r.fn:4d}   "
            f"{zh.precision:.3f}/{zh.recall:.3f}  {en.precision:.3f}/{en.recall:.3f}{mark}"
        )
    pos_sims = np.array([s.similarity for s in pos])
    lines += [
        "",
        f"MinHash similarity of copies: min {pos_sims.min():.3f}, 5th percentile {np.percentile(pos_sims, 5):.3f}; "
        f"of unrelated pairs: max {max(s.similarity for s in neg):.3f}",
        "recall at the default threshold by share of text edited: "
        + ", ".join(
            f"{lo:.0%}-{hi:.0%}: {table([s for s in pos if lo <= (s.edit or 0) < hi], [default])[0].recall:.3f} "
            f"(n={sum(1 for s in pos if lo <= (s.edit or 0) < hi)})"
            for lo, hi in ((0.0, 0.1), (0.1, 0.2), (0.2, 0.301))
        ),
    ]
    if sample:
        near, worst, pair = sample_site_pairs(signer)
        lines.append(f"sample site: near-duplicate pair {near:.3f}; most similar unrelated pair {worst:.3f} ({pair})")
    return "\n".join(lines), default_row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapcrawl.dedup.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help=f"labelled set folder (default {DEFAULT_SET})")
    parser.add_argument(
        "--thresholds", default=",".join(map(str, THRESHOLDS)), help="comma-separated thresholds to tabulate"
    )
    parser.add_argument("--default", type=float, default=DEFAULT_NEAR_DUP_THRESHOLD, help="threshold to mark")
    parser.add_argument("--no-sample", action="store_true", help="skip the sample-site line")
    args = parser.parse_args(argv)
    try:
        thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--thresholds {args.thresholds!r}: expected numbers separated by commas")
    text, _ = report(args.set, thresholds, args.default, sample=not args.no_sample)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
