"""MinHash signatures and LSH band keys: the near-duplicate half of snapcrawl's dedup.

A document (normalised title + body) becomes a set of shingles: character n-grams for
Chinese (and other unspaced scripts), word shingles for Latin text. datasketch turns the
set into a MinHash signature; the signature is cut into ``BANDS`` bands of ``ROWS`` values,
and each band becomes one 64-bit key. Two documents sharing any band key are candidates;
a candidate is a near-duplicate when the share of equal signature values (the MinHash
estimate of their Jaccard similarity) reaches the threshold.

The band layout is fixed (not derived from the threshold) because band keys are persisted
across runs: changing the threshold must not invalidate a state file. ``ROWS = 3`` with
``BANDS = 42`` makes a pair at Jaccard 0.45 a candidate with probability 0.98 and one at
0.1 with probability 0.04, so any threshold from 0.35 up is served without losing recall
(see docs/dedup.md for the measured curve).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from datasketch import MinHash

from snapcrawl.processors import detect_language

NUM_PERM = 128
BANDS = 42
ROWS = 3
CHAR_NGRAM = 5
WORD_SHINGLE = 3
SEED = 20240924
#: Below this many shingles a text is too short to call "nearly the same" (a one-line
#: brief shares most of its n-grams with any other brief on the topic): exact match only.
MIN_SHINGLES = 12

_CHUNK = 256
_NON_WORD_RE = re.compile(r"[\W_]+")
_WORD_RE = re.compile(r"[^\W_]+")
_U64 = np.uint64
_MUL = _U64(0x100000001B3)  # FNV-1a 64-bit prime: mixes consecutive tokens of a shingle
_M1, _M2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)  # splitmix64 finaliser


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads structured 64-bit values over all bits (vectorised)."""
    h = h ^ (h >> _U64(30))
    h = h * _M1
    h = h ^ (h >> _U64(27))
    h = h * _M2
    return h ^ (h >> _U64(31))


def normalise(text: str) -> str:
    """NFKC + case folding, the same normalisation the exact content hash uses."""
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Layout:
    """Everything that must match between runs for stored signatures and band keys to compare."""

    num_perm: int = NUM_PERM
    bands: int = BANDS
    rows: int = ROWS
    char_ngram: int = CHAR_NGRAM
    word_shingle: int = WORD_SHINGLE
    seed: int = SEED
    min_shingles: int = MIN_SHINGLES

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"LSH layout: {self.bands} bands x {self.rows} rows exceed num_perm={self.num_perm}")

    def describe(self) -> str:
        """The layout as stored in a state file (compared on open)."""
        return (
            f"minhash-affine32 perm={self.num_perm} seed={self.seed} bands={self.bands}x{self.rows} "
            f"char={self.char_ngram} word={self.word_shingle} min={self.min_shingles}"
        )


class Signer:
    """Turns title + body into a MinHash signature and its LSH band keys (pure, no I/O)."""

    def __init__(self, layout: Layout | None = None) -> None:
        self.layout = layout or Layout()
        self._permutations = MinHash(num_perm=self.layout.num_perm, seed=self.layout.seed).permutations
        lay = self.layout
        self._band_salt = _mix64(np.arange(1, lay.bands + 1, dtype=_U64))

    @cached_property
    def _empty(self) -> np.ndarray:
        return np.full(self.layout.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)

    def shingles(self, text: str, language: str | None = None) -> np.ndarray:
        """The set of shingle hashes (unique uint32) of ``text``.

        Chinese text (``language`` ``zh``, or detected by script count) uses character
        n-grams over the text with punctuation and spaces removed; other text uses word
        shingles. Tokens are hashed once and combined per shingle with numpy, because a
        Python call per shingle would cost more than the whole MinHash.
        """
        norm = normalise(text)
        lang = language or detect_language(norm)
        if lang.split("-")[0] in ("zh", "ja", "ko"):
            k = self.layout.char_ngram
            chars = _NON_WORD_RE.sub("", norm)
            ids = np.frombuffer(chars.encode("utf-32-le"), dtype=np.uint32).astype(_U64)
        else:
            k = self.layout.word_shingle
            words = _WORD_RE.findall(norm)
            ids = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=_U64, count=len(words))
        if ids.size == 0:
            return np.empty(0, dtype=np.uint32)
        k = min(k, int(ids.size))
        n = int(ids.size) - k + 1
        h = ids[:n].copy()
        for j in range(1, k):
            h = h * _MUL + ids[j : n + j]
        return np.unique((_mix64(h) >> _U64(32)).astype(np.uint32))

    def signature(self, title: str | None, body: str | None, language: str | None = None) -> np.ndarray | None:
        """MinHash signature (uint32 x num_perm) of title + body, or ``None`` when too short to compare."""
        shingles = self.shingles(f"{title or ''}\n{body or ''}", language)
        if shingles.size < self.layout.min_shingles:
            return None
        m = MinHash(
            num_perm=self.layout.num_perm,
            seed=self.layout.seed,
            hashfunc=int,  # values are already hashes; datasketch mixes them again (fmix32)
            permutations=self._permutations,
            scheme="affine32",
        )
        values = shingles.tolist()
        for i in range(0, len(values), _CHUNK):  # chunks keep datasketch's (n x perm) matrix in cache
            m.update_batch(values[i : i + _CHUNK])
        return np.asarray(m.hashvalues, dtype=np.uint32)

    def band_keys(self, signature: np.ndarray) -> list[int]:
        """One signed 64-bit key per band (Redis field / in-memory bucket), band index mixed in."""
        return [int(x) for x in self.band_keys_many(signature.reshape(1, -1))[0]]

    def band_keys_many(self, signatures: np.ndarray) -> np.ndarray:
        """Band keys (int64, documents x bands) of many signatures at once (index rebuilds)."""
        lay = self.layout
        rows = signatures[:, : lay.bands * lay.rows].astype(_U64).reshape(-1, lay.bands, lay.rows)
        h = np.broadcast_to(self._band_salt, rows.shape[:2]).copy()
        for j in range(lay.rows):
            h = h * _MUL + rows[:, :, j]
        return _mix64(h).view(np.int64)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """MinHash estimate of the Jaccard similarity: the share of equal signature values."""
    return float(np.count_nonzero(a == b)) / float(a.size)


def similarities(signature: np.ndarray, stored: list[bytes]) -> np.ndarray:
    """:func:`similarity` of ``signature`` with each stored signature (bytes as :func:`to_bytes` writes)."""
    if not stored:
        return np.empty(0)
    if any(len(b) != signature.size * 4 for b in stored):  # not this layout's: compare one by one
        return np.array([similarity(signature, from_bytes(b)) if len(b) == signature.size * 4 else 0.0 for b in stored])
    matrix = np.frombuffer(b"".join(stored), dtype="<u4").reshape(len(stored), -1)
    return np.count_nonzero(matrix == signature.astype("<u4", copy=False), axis=1) / float(signature.size)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two shingle sets (for evaluation)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / float(a.size + b.size - inter)


def to_bytes(signature: np.ndarray) -> bytes:
    """Little-endian bytes of a signature, as stored (SQLite BLOB / Redis string)."""
    return signature.astype("<u4", copy=False).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)
