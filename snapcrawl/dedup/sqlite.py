"""The default state store: one SQLite file per project (``SNAPCRAWL_STATE_PATH``).

WAL mode with ``synchronous=NORMAL``: readers never block the writer, a commit costs no fsync,
and a killed process loses at most the transaction it was in. Every :meth:`assign` is one
short ``BEGIN IMMEDIATE`` transaction, so two processes sharing the file (e.g. a crawl and
an ad-hoc query) serialise cleanly instead of corrupting each other.

Documents, their content hashes and MinHash signatures are rows here; the LSH buckets are
not: they are derived from the signatures and kept in memory (:class:`BandIndex`), rebuilt
when the store opens. A B-tree of band keys would cost 42 random page writes per document
(over a millisecond per document at a million), while appending one row per document stays
cheap. Inside each ``assign`` transaction the store first picks up documents that another
process added to the file since, so first-writer-wins also holds across processes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from snapcrawl.dedup.bands import BandIndex
from snapcrawl.dedup.minhash import Layout, Signer, similarities, to_bytes
from snapcrawl.dedup.store import ARTICLE, EXACT, NEAR, Assignment, Doc, PageState, StateError, StateStore

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
#: WAL pages (4 KiB) between automatic checkpoints.
WAL_CHECKPOINT_PAGES = 16384
#: Signatures read per step when the band index is rebuilt on open.
LOAD_CHUNK = 10_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    n INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    cluster TEXT NOT NULL,
    root_url TEXT NOT NULL,
    kind TEXT,
    hash BLOB NOT NULL,
    sig BLOB
);
CREATE TABLE IF NOT EXISTS hashes (hash BLOB PRIMARY KEY, doc INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY,
    kind TEXT,
    hash TEXT,
    revision INTEGER,
    etag TEXT,
    last_modified TEXT,
    run TEXT,
    p_run TEXT,
    p_fetched INTEGER,
    p_etag TEXT,
    p_last_modified TEXT,
    p_kind TEXT,
    p_hash TEXT,
    p_revision INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pages_pending ON pages (p_run) WHERE p_run IS NOT NULL;
"""
_NOTE_FETCH = """
INSERT INTO pages (url, p_run, p_fetched, p_etag, p_last_modified) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (url) DO UPDATE SET
    p_kind = CASE WHEN p_run IS excluded.p_run THEN p_kind END,
    p_hash = CASE WHEN p_run IS excluded.p_run THEN p_hash END,
    p_revision = CASE WHEN p_run IS excluded.p_run THEN p_revision END,
    p_run = excluded.p_run, p_fetched = 1,
    p_etag = excluded.p_etag, p_last_modified = excluded.p_last_modified
"""
_NOTE_ARTICLE = """
INSERT INTO pages (url, p_run, p_fetched, p_kind, p_hash, p_revision) VALUES (?, ?, 0, 'article', ?, ?)
ON CONFLICT (url) DO UPDATE SET
    p_fetched = CASE WHEN p_run IS excluded.p_run THEN p_fetched ELSE 0 END,
    p_etag = CASE WHEN p_run IS excluded.p_run THEN p_etag END,
    p_last_modified = CASE WHEN p_run IS excluded.p_run THEN p_last_modified END,
    p_run = excluded.p_run, p_kind = 'article', p_hash = excluded.p_hash, p_revision = excluded.p_revision
"""
# Confirmation in batches: a huge run confirms in many short transactions, and a kill in the
# middle leaves every URL either fully confirmed or fully as before.
_CONFIRM = """
UPDATE pages SET
    kind = COALESCE(p_kind, 'page'),
    hash = CASE WHEN p_kind IS NOT NULL THEN p_hash ELSE hash END,
    revision = CASE WHEN p_kind IS NOT NULL THEN p_revision ELSE revision END,
    etag = CASE WHEN p_fetched THEN p_etag ELSE etag END,
    last_modified = CASE WHEN p_fetched THEN p_last_modified ELSE last_modified END,
    run = p_run,
    p_run = NULL, p_fetched = NULL, p_etag = NULL, p_last_modified = NULL,
    p_kind = NULL, p_hash = NULL, p_revision = NULL
WHERE url IN (SELECT url FROM pages WHERE p_run = ? LIMIT 5000)
"""


class SQLiteStore(StateStore):
    """State in a SQLite file (``":memory:"`` for a throw-away store)."""

    def __init__(self, path: str | Path, run_id: str, layout: Layout | None = None, *, cache_mb: int = 64) -> None:
        super().__init__(run_id, layout or Layout())
        self.path = str(path)
        self.signer = Signer(self.layout)
        self.index = BandIndex(self.layout.bands)
        self._indexed_upto = 0  # highest document number whose bands are in self.index
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            db = self._db
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # checkpoints (the only fsyncs in WAL + NORMAL) every 64 MiB of WAL instead of 4 MiB: a
            # document touches a few random index pages, so checkpoints dominated the insert cost
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={WAL_CHECKPOINT_PAGES * 4096}")
            db.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")
            db.executescript(_SCHEMA)
            self._check_meta()
            self._catch_up()
        except sqlite3.Error as exc:
            raise StateError(f"state file {self.path}: {exc}") from exc

    def describe(self) -> str:
        return f"SQLite {self.path}"

    # ------------------------------------------------------------------ plumbing

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateError(f"state file {self.path}: used after close()")
        return self._db

    def _check_meta(self) -> None:
        want = {"schema": SCHEMA_VERSION, "layout": self.layout.describe()}
        with self._tx():
            for key, value in want.items():
                self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            have = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        for key, value in want.items():
            if have.get(key) != value:
                raise StateError(
                    f"state file {self.path} was written with {key} {have.get(key)!r}, this snapcrawl uses {value!r}; "
                    "point SNAPCRAWL_STATE_PATH at a new file (the old one cannot be compared)"
                )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _catch_up(self) -> int:
        """Add documents indexed since ``_indexed_upto`` (all of them on open) to the band index.

        Band keys are computed in chunks into one preallocated array, so a rebuild's peak memory
        is the finished index plus one chunk, not a copy of everything.
        """
        db = self.db
        (top,) = db.execute("SELECT coalesce(max(n), 0) FROM docs").fetchone()
        if top <= self._indexed_upto:
            return 0
        (count,) = db.execute(
            "SELECT count(*) FROM docs WHERE n > ? AND n <= ? AND sig IS NOT NULL", (self._indexed_upto, top)
        ).fetchone()
        ns = np.empty(count, dtype=np.uint32)
        keys = np.empty((count, self.layout.bands), dtype=np.uint32)
        start, filled = self._indexed_upto, 0
        while filled < count:
            rows = db.execute(
                "SELECT n, sig FROM docs WHERE n > ? AND n <= ? AND sig IS NOT NULL ORDER BY n LIMIT ?",
                (start, top, LOAD_CHUNK),
            ).fetchall()
            if not rows:
                break
            rows = rows[: count - filled]
            start = rows[-1][0]
            sigs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<u4").reshape(len(rows), -1)
            end = filled + len(rows)
            ns[filled:end] = [r[0] for r in rows]
            keys[filled:end] = BandIndex.fold(self.signer.band_keys_many(sigs.astype(np.uint32)))
            filled = end
        if filled:
            self.index.load(ns[:filled], keys[:filled])
        self._indexed_upto = top
        if filled > 1000:
            logger.info("dedup index: %d signatures loaded from %s", filled, self.path)
        return filled

    # ------------------------------------------------------------------ dedup index

    def assign(self, doc: Doc, threshold: float) -> Assignment:
        digest = bytes.fromhex(doc.content_hash)
        sig = to_bytes(doc.signature) if doc.signature is not None else None
        bands = list(doc.bands) if doc.signature is not None else []
        with self._tx() as db:
            self._catch_up()  # documents another process added since our last transaction
            row = db.execute("SELECT n, cluster, root_url, kind, hash FROM docs WHERE id = ?", (doc.id,)).fetchone()
            if row is not None:
                n, cluster, root, kind, old = row
                if old != digest:  # a revision: index the new content under the same cluster
                    db.execute("INSERT OR IGNORE INTO hashes (hash, doc) VALUES (?, ?)", (digest, n))
                    db.execute("UPDATE docs SET hash = ?, sig = COALESCE(?, sig) WHERE n = ?", (digest, sig, n))
                    if bands:
                        self.index.query_add(n, bands)
                return Assignment(cluster, root if kind else None, kind, known=True)
            owner = db.execute(
                "SELECT d.cluster, d.root_url FROM hashes h JOIN docs d ON d.n = h.doc WHERE h.hash = ?", (digest,)
            ).fetchone()
            if owner is not None:
                db.execute(
                    "INSERT INTO docs (id, url, cluster, root_url, kind, hash, sig) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                    (doc.id, doc.url, owner[0], owner[1], EXACT, digest),
                )
                return Assignment(owner[0], owner[1], EXACT, 1.0)
            (n,) = db.execute(
                "INSERT INTO docs (id, url, cluster, root_url, kind, hash, sig) VALUES (?, ?, ?, ?, NULL, ?, ?)"
                " RETURNING n",
                (doc.id, doc.url, doc.id, doc.url, digest, sig),
            ).fetchone()
            db.execute("INSERT OR IGNORE INTO hashes (hash, doc) VALUES (?, ?)", (digest, n))
            self._indexed_upto = n
            candidates = self.index.query_add(n, bands) if bands else set()
            if candidates and doc.signature is not None:
                best: tuple[float, int, str, str] | None = None
                marks = ",".join("?" * len(candidates))
                rows = db.execute(
                    f"SELECT n, sig FROM docs WHERE sig IS NOT NULL AND n IN ({marks})",
                    sorted(candidates),
                ).fetchall()
                # all candidates at once: on template-heavy sites a document has hundreds of
                # band-sharing candidates, and a Python loop per candidate dominated the cost
                sims = similarities(doc.signature, [sig for _, sig in rows])
                for (cn, _), sim in zip(rows, sims.tolist(), strict=True):
                    # most similar wins; on a tie the earliest indexed document
                    if sim >= threshold and (best is None or sim > best[0] or (sim == best[0] and cn < best[1])):
                        best = (sim, cn, "", "")
                if best is not None:
                    ccluster, croot = db.execute(
                        "SELECT cluster, root_url FROM docs WHERE n = ?", (best[1],)
                    ).fetchone()
                    best = (best[0], best[1], ccluster, croot)
                if best is not None:
                    db.execute(
                        "UPDATE docs SET cluster = ?, root_url = ?, kind = ? WHERE n = ?", (best[2], best[3], NEAR, n)
                    )
                    return Assignment(best[2], best[3], NEAR, best[0])
            return Assignment(doc.id)

    # ------------------------------------------------------------------ URL state

    def page(self, url: str) -> PageState | None:
        row = self.db.execute(
            "SELECT kind, hash, revision, etag, last_modified FROM pages WHERE url = ?", (url,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        kind, digest, revision, etag, modified = row
        return PageState(kind, digest, revision or 0, etag, modified)

    def note_fetch(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self.db.execute(_NOTE_FETCH, (url, self.run_id, etag, last_modified))

    def note_article(self, url: str, content_hash: str, revision: int) -> None:
        self.db.execute(_NOTE_ARTICLE, (url, self.run_id, content_hash, revision))

    def confirm(self) -> int:
        total = 0
        while True:
            with self._tx() as db:
                changed = db.execute(_CONFIRM, (self.run_id,)).rowcount
            total += changed
            if changed == 0:
                return total

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ------------------------------------------------------------------ inspection

    def counts(self) -> dict[str, int]:
        """Row counts, for logs and the benchmark."""
        db = self.db
        return {
            "docs": db.execute("SELECT count(*) FROM docs").fetchone()[0],
            "clusters": db.execute("SELECT count(*) FROM docs WHERE kind IS NULL").fetchone()[0],
            "band_entries": len(self.index),
            "pages": db.execute("SELECT count(*) FROM pages WHERE kind IS NOT NULL").fetchone()[0],
            "articles": db.execute("SELECT count(*) FROM pages WHERE kind = ?", (ARTICLE,)).fetchone()[0],
        }
