"""Near-duplicate index benchmark: insert + query cost per document, and peak memory.

    python -m benchmarks.dedup_index --docs 100000
    python -m benchmarks.dedup_index --docs 1000000            # takes a while; run once
    python -m benchmarks.dedup_index --docs 100000 --backend redis   # starts its own redis-server

Each synthetic document is Chinese-like text (default 600 characters) drawn from a Zipf-weighted
vocabulary of 50,000 two-to-four-character "words" over 3,500 common code points; 4 % of the
documents are near copies of a recent one (about 10 % of the words replaced, an editor line
added) and 1 % exact copies. Documents are generated outside the timers. Per document the
benchmark times exactly what the dedup pipeline does: the MinHash signature and band keys
(``signature``), and ``StateStore.assign`` (``index``: one transaction that looks the document
up, inserts it, and finds and verifies its near-duplicate candidates). It reports the mean and
percentiles, the planted copies found, the process's peak RSS, and (SQLite) the file size and
the time and peak RSS of a fresh process opening the finished state (the index rebuild).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/dedup_index.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from snapcrawl.dedup import DEFAULT_NEAR_DUP_THRESHOLD
from snapcrawl.dedup.minhash import Signer
from snapcrawl.dedup.store import Doc, StateStore
from snapcrawl.processors import content_hash, record_id

OUT = Path(__file__).resolve().parent / "out"
EDITOR = "（责任编辑：王敏）"


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would include a parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def documents(n: int, chars: int, seed: int = 1) -> Iterator[tuple[str, str, str | None]]:
    """(url, body, planted) for ``n`` documents; ``planted`` is "near"/"exact" for planted copies."""
    rng = random.Random(seed)
    alphabet = [chr(0x4E00 + i) for i in range(3500)]
    vocab = ["".join(rng.choices(alphabet, k=rng.randint(2, 4))) for _ in range(50_000)]
    cum = list(np.cumsum([1 / (i + 1) ** 0.9 for i in range(len(vocab))]))
    words = max(8, chars // 3)
    recent: list[list[str]] = []
    for i in range(n):
        url = f"https://news{i % 97}.example.com/a/{i}.html"
        roll = rng.random()
        if recent and roll < 0.04:
            base = list(rng.choice(recent))
            for _ in range(len(base) // 10):
                base[rng.randrange(len(base))] = rng.choices(vocab, cum_weights=cum)[0]
            yield url, "".join(base) + EDITOR, "near"
        elif recent and roll < 0.05:
            yield url, "".join(rng.choice(recent)), "exact"
        else:
            text = rng.choices(vocab, cum_weights=cum, k=words)
            if len(recent) < 2000:
                recent.append(text)
            else:
                recent[rng.randrange(2000)] = text
            yield url, "".join(text), None


def open_backend(backend: str, path: Path, redis_url: str | None) -> StateStore:
    if backend == "sqlite":
        from snapcrawl.dedup.sqlite import SQLiteStore

        return SQLiteStore(path, "bench")
    from snapcrawl.dedup.redis import RedisStore

    assert redis_url is not None
    return RedisStore.from_url(redis_url, "bench", prefix="bench:")


def reopen(path: Path) -> dict[str, float]:
    """Open a finished SQLite state in a fresh process: the band index rebuild on open."""
    code = (
        "import sys, time, json; t = time.perf_counter();"
        "from benchmarks.dedup_index import peak_rss_mb;"
        "from snapcrawl.dedup.sqlite import SQLiteStore; s = SQLiteStore(sys.argv[1], 'reopen');"
        "print(json.dumps({'open_s': time.perf_counter() - t, 'band_entries': len(s.index),"
        "'peak_rss_mb': peak_rss_mb()}))"
    )
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-c", code, str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=root)
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def run(n: int, chars: int, backend: str, workdir: Path, redis_url: str | None) -> dict[str, Any]:
    path = workdir / "state.sqlite"
    store = open_backend(backend, path, redis_url)
    signer = Signer()
    sig_t = np.empty(n)
    idx_t = np.empty(n)
    planted = {"near": 0, "exact": 0}
    found = {"near": 0, "exact": 0}
    hits = {"near": 0, "exact": 0}
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    cpu_sig = cpu_idx = 0.0
    for i, (url, body, plant) in enumerate(documents(n, chars)):
        c0, t0 = time.process_time(), time.perf_counter()
        sig = signer.signature("", body, "zh")
        bands = signer.band_keys(sig) if sig is not None else ()
        d = Doc(record_id(url), url, content_hash("", body), sig, bands)
        c1, t1 = time.process_time(), time.perf_counter()
        got = store.assign(d, DEFAULT_NEAR_DUP_THRESHOLD)
        c2, t2 = time.process_time(), time.perf_counter()
        sig_t[i], idx_t[i] = t1 - t0, t2 - t1
        cpu_sig += c1 - c0
        cpu_idx += c2 - c1
        if plant:
            planted[plant] += 1
            hits[plant] += got.kind is not None
        if got.kind:
            found[got.kind] += 1
        if (i + 1) % max(1, n // 10) == 0:
            print(
                f"  {i + 1:>9,} docs: signature {sig_t[: i + 1].mean() * 1e3:.3f} ms, "
                f"index {idx_t[: i + 1].mean() * 1e3:.3f} ms (wall, mean so far), peak RSS {peak_rss_mb():.0f} MB",
                flush=True,
            )
    wall = time.perf_counter() - started
    result: dict[str, Any] = {
        "when": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "backend": backend,
        "documents": n,
        "chars_per_document": chars,
        "threshold": DEFAULT_NEAR_DUP_THRESHOLD,
        "ms_per_doc": {
            "signature_mean": round(float(sig_t.mean()) * 1e3, 4),
            "index_mean": round(float(idx_t.mean()) * 1e3, 4),
            "index_p50": round(float(np.percentile(idx_t, 50)) * 1e3, 4),
            "index_p99": round(float(np.percentile(idx_t, 99)) * 1e3, 4),
            "index_last_10pct_mean": round(float(idx_t[-max(1, n // 10) :].mean()) * 1e3, 4),
            "total_mean": round(float((sig_t + idx_t).mean()) * 1e3, 4),
            # CPU time is what the work costs; wall time also holds waits for a busy machine and fsyncs
            "signature_cpu": round(cpu_sig / n * 1e3, 4),
            "index_cpu": round(cpu_idx / n * 1e3, 4),
            "total_cpu": round((cpu_sig + cpu_idx) / n * 1e3, 4),
        },
        "wall_s": round(wall, 1),
        "planted": planted,
        "planted_found": hits,
        "found": found,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(rss_before, 1),
        "cpu": os.cpu_count(),
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    if backend == "sqlite":
        from snapcrawl.dedup.sqlite import SQLiteStore

        assert isinstance(store, SQLiteStore)
        result["band_index_mb"] = round(store.index.nbytes / 2**20, 1)  # merged arrays (recent dicts on top)
        result["counts"] = store.counts()
        store.close()
        result["file_mb"] = round(sum(p.stat().st_size for p in workdir.glob("state.sqlite*")) / 2**20, 1)
        result["reopen"] = reopen(path)
    else:
        import redis

        info = redis.Redis.from_url(redis_url or "").info("memory")
        result["redis_used_memory_mb"] = round(int(info["used_memory"]) / 2**20, 1)
        store.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dedup_index", description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--chars", type=int, default=600, help="characters per synthetic document")
    parser.add_argument("--backend", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--workdir", type=Path, default=None, help="where the state file goes (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dedup-bench-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        print(f"dedup index benchmark: {args.docs:,} documents of ~{args.chars} characters, {args.backend}")
        if args.backend == "redis":
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.dedup_helpers import redis_server

            with redis_server() as url:
                result = run(args.docs, args.chars, "redis", workdir, url)
        else:
            result = run(args.docs, args.chars, "sqlite", workdir, None)
    OUT.mkdir(exist_ok=True)
    out = OUT / f"dedup-{args.backend}-{args.docs}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ms = result["ms_per_doc"]
    print(
        f"per document (wall): signature {ms['signature_mean']:.3f} ms + index {ms['index_mean']:.3f} ms "
        f"(p50 {ms['index_p50']:.3f}, p99 {ms['index_p99']:.3f}) = {ms['total_mean']:.3f} ms; "
        f"CPU: {ms['signature_cpu']:.3f} + {ms['index_cpu']:.3f} = {ms['total_cpu']:.3f} ms; "
        f"peak RSS {result['peak_rss_mb']:.0f} MB; load average {result['load_avg_at_end'][2]}"
    )
    print(
        f"planted copies found: near {result['planted_found']['near']}/{result['planted']['near']}, "
        f"exact {result['planted_found']['exact']}/{result['planted']['exact']}"
    )
    if "reopen" in result:
        r = result["reopen"]
        print(
            f"state file {result['file_mb']} MB; band index {result['band_index_mb']} MB; reopening it: "
            f"{r['open_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
