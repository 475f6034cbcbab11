"""The labelled near-duplicate set and ``python -m snapcrawl.dedup.evaluate`` on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from snapcrawl.dedup import DEFAULT_NEAR_DUP_THRESHOLD
from snapcrawl.dedup.evaluate import THRESHOLDS, report
from tests.conftest import ROOT

SET = ROOT / "tests" / "fixtures" / "neardup"


def test_default_threshold_meets_the_targets() -> None:
    text, row = report(SET, THRESHOLDS, DEFAULT_NEAR_DUP_THRESHOLD, sample=False)
    assert row.threshold == DEFAULT_NEAR_DUP_THRESHOLD
    assert row.precision >= 0.99, text
    assert row.recall >= 0.95, text
    assert row.tp + row.fn == 336


def test_labelled_set_is_what_the_builder_makes(tmp_path: Path) -> None:
    sys.path.insert(0, str(SET))
    try:
        import build
    finally:
        sys.path.remove(str(SET))
    build.build(tmp_path)
    for name in ("docs.jsonl", "pairs.jsonl"):
        assert (tmp_path / name).read_bytes() == (SET / name).read_bytes(), name
    docs = {d["id"]: d for d in map(json.loads, (SET / "docs.jsonl").read_text(encoding="utf-8").splitlines())}
    copies = [d for d in docs.values() if "copy_of" in d]
    assert {d["lang"] for d in copies} == {"zh", "en"}
    assert max(d["edit"] for d in copies) <= 0.30 and min(d["edit"] for d in copies) == 0.0
    ops = {op for d in copies for op in d["ops"]}
    assert {"title", "editor", "change", "insert", "delete"} <= ops
    pairs = [json.loads(line) for line in (SET / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    for p in pairs:
        a, b = docs[p["a"]], docs[p["b"]]
        assert a["topic"] == b["topic"] and a["lang"] == b["lang"]
        same_story = a.get("copy_of", a["id"]) == b.get("copy_of", b["id"])
        assert bool(p["label"]) == same_story


def test_evaluate_command_prints_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "snapcrawl.dedup.evaluate"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "threshold  precision  recall" in out
    default_row = next(line for line in out.splitlines() if line.endswith("<- default"))
    assert default_row.split()[0] == f"{DEFAULT_NEAR_DUP_THRESHOLD:.2f}"
    assert "sample site: near-duplicate pair" in out
    bad = subprocess.run(
        [sys.executable, "-m", "snapcrawl.dedup.evaluate", "--set", "nowhere"], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "nowhere" in bad.stderr and "Traceback" not in bad.stderr
