"""LSH buckets in memory, compact enough for millions of documents.

Per band: a sorted numpy array of 32-bit band keys with the document number beside each
(8 bytes per document and band, 336 MB at a million documents with 42 bands), plus a small
dict of recent additions that is merged into the arrays in bulk. datasketch's MinHashLSH
keeps the same buckets as Python dicts of sets (about 100 bytes per entry, over 4 GB at a
million documents), which is why this part is written by hand; datasketch still computes
the signatures. The SQLite store rebuilds this index from the stored signatures when it
opens, so nothing here needs to be persisted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Documents one bucket holds at most: a bucket this full holds boilerplate, not stories.
MAX_BUCKET = 1024
#: Recent additions (document x band entries) kept in dicts before a bulk merge: ~10 MB of dicts
#: at most (a crawl's memory stays flat), against ~8 MB copied per merge and band at a million documents.
MERGE_AT = 100_000


class BandIndex:
    """band key -> document numbers, for ``bands`` bands; documents are uint32 numbers."""

    def __init__(self, bands: int, *, merge_at: int = MERGE_AT, max_bucket: int = MAX_BUCKET) -> None:
        self.bands = bands
        self.merge_at = merge_at
        self.max_bucket = max_bucket
        self._keys: list[np.ndarray] = [np.empty(0, np.uint32) for _ in range(bands)]
        self._docs: list[np.ndarray] = [np.empty(0, np.uint32) for _ in range(bands)]
        self._recent: list[dict[int, int | list[int]]] = [{} for _ in range(bands)]
        self._pending = 0

    def __len__(self) -> int:
        """Entries (document x band) held."""
        return sum(k.size for k in self._keys) + self._pending

    @property
    def nbytes(self) -> int:
        """Bytes held by the merged arrays (the recent dicts come on top, bounded by ``merge_at``)."""
        return sum(k.nbytes + d.nbytes for k, d in zip(self._keys, self._docs, strict=True))

    @staticmethod
    def fold(keys: np.ndarray) -> np.ndarray:
        """64-bit band keys to the 32 bits kept here (a false match only adds a candidate to verify)."""
        return (keys.view(np.uint64) & np.uint64(0xFFFFFFFF)).astype(np.uint32)

    def query_add(self, doc: int, keys: Sequence[int] | np.ndarray) -> set[int]:
        """Documents sharing any band key with ``doc``; then add ``doc`` under its keys."""
        folded = self.fold(np.asarray(keys, dtype=np.int64))
        found: set[int] = set()
        max_bucket = self.max_bucket
        added = 0
        for band, (key, ikey) in enumerate(zip(folded, folded.tolist(), strict=True)):
            arr = self._keys[band]
            held = 0
            if arr.size:
                i = int(arr.searchsorted(key))  # a numpy scalar: a Python int would copy the array
                if i < arr.size and arr[i] == key:
                    j = int(arr.searchsorted(key, side="right"))
                    held = j - i
                    found.update(self._docs[band][i:j].tolist())
            recent = self._recent[band]
            bucket = recent.get(ikey)
            if bucket is None:
                if held < max_bucket:
                    recent[ikey] = doc  # a bare int: most buckets hold one document, and ints cost the GC nothing
                    added += 1
            elif isinstance(bucket, int):
                found.add(bucket)
                if held + 1 < max_bucket:
                    recent[ikey] = [bucket, doc]
                    added += 1
            else:
                found.update(bucket)
                if held + len(bucket) < max_bucket:  # a full bucket takes no more documents: the first ones stay
                    bucket.append(doc)
                    added += 1
        self._pending += added
        if self._pending >= self.merge_at:
            self.merge()
        found.discard(doc)
        return found

    def load(self, docs: np.ndarray, keys: np.ndarray) -> None:
        """Bulk-add documents (``docs``; ``keys`` int64 or already folded uint32, docs x bands), e.g. on open."""
        if docs.size == 0:
            return
        folded = keys if keys.dtype == np.uint32 else self.fold(np.ascontiguousarray(keys, dtype=np.int64))
        for band in range(self.bands):
            self._merge_band(band, folded[:, band], docs.astype(np.uint32))

    def merge(self) -> None:
        """Move the recent additions into the sorted arrays, one band at a time (peak memory: one band)."""
        for band in range(self.bands):
            recent = self._recent[band]
            if not recent:
                continue
            keys = np.fromiter(
                (k for k, ds in recent.items() for _ in ((ds,) if isinstance(ds, int) else ds)), dtype=np.uint32
            )
            docs = np.fromiter(
                (d for ds in recent.values() for d in ((ds,) if isinstance(ds, int) else ds)), dtype=np.uint32
            )
            self._recent[band] = {}
            self._merge_band(band, keys, docs)
        self._pending = 0

    def _merge_band(self, band: int, keys: np.ndarray, docs: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")  # stable: equal keys keep document order
        keys, docs = keys[order], docs[order]
        at = self._keys[band].searchsorted(keys, side="right")
        self._keys[band] = np.insert(self._keys[band], at, keys)
        self._docs[band] = np.insert(self._docs[band], at, docs)
