"""The interface of snapcrawl's persistent dedup state, shared by the SQLite and Redis backends.

One store holds, per project: the dedup index (which content hash and which near-duplicate
signature belongs to which cluster, first writer wins) and the per-URL state incremental
recrawls need (page kind, content hash, revision, ETag / Last-Modified of the last run).

URL state is written *pending* for the current run and becomes the state later runs see only
when the run is confirmed (:meth:`StateStore.confirm`, called when a run closes normally).
A run that is killed never confirms, so the next run does not mistake pages that were fetched
but never published for "unchanged". The cluster index needs no such step: assignments are
keyed by URL, so a URL processed again gets the same answer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from snapcrawl.dedup.minhash import Layout

ARTICLE = "article"
PAGE = "page"  # any other page kind (listing, home, error page): always fetched in full
EXACT, NEAR = "exact", "near"


class StateError(RuntimeError):
    """A state store that cannot be used; the message names the file or URL and the problem."""


@dataclass(frozen=True)
class Doc:
    """One article as the dedup index sees it."""

    id: str
    url: str
    content_hash: str
    signature: np.ndarray | None = None  # None: too short for near-duplicate matching
    bands: Sequence[int] = field(default_factory=tuple)


@dataclass(frozen=True)
class Assignment:
    """Where a document landed: its cluster, and the first-seen record when it is a copy."""

    cluster_id: str
    duplicate_of: str | None = None  # URL of the cluster's first-seen record, None for that record itself
    kind: str | None = None  # EXACT, NEAR or None
    similarity: float | None = None
    known: bool = False  # the URL was indexed before (an earlier run, or a revision of the page)


@dataclass(frozen=True)
class PageState:
    """What the last confirmed run knew about a URL."""

    kind: str  # ARTICLE or PAGE
    content_hash: str | None = None
    revision: int = 0
    etag: str | None = None
    last_modified: str | None = None

    @property
    def conditional(self) -> bool:
        """A conditional request makes sense: an article with a validator from the server."""
        return self.kind == ARTICLE and bool(self.etag or self.last_modified)


class StateStore(ABC):
    """Dedup index + URL state of one project. Every method is one small atomic step."""

    def __init__(self, run_id: str, layout: Layout) -> None:
        self.run_id = run_id
        self.layout = layout

    @abstractmethod
    def assign(self, doc: Doc, threshold: float) -> Assignment:
        """Index ``doc`` and return its cluster, atomically (first writer wins).

        A URL seen before keeps its cluster (its new content is indexed too); otherwise an
        equal content hash makes it an exact copy, else the most similar indexed document at
        or above ``threshold`` makes it a near copy, else it starts a new cluster.
        """

    @abstractmethod
    def page(self, url: str) -> PageState | None:
        """The state of ``url`` as the last confirmed run left it.

        Never this run's own pending state: a page processed again in the same run (a resumed
        run after a kill, whose first visit never reached the feeds) must not look unchanged.
        """

    @abstractmethod
    def note_fetch(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Pending: ``url`` answered 200 in this run with these validators."""

    @abstractmethod
    def note_article(self, url: str, content_hash: str, revision: int) -> None:
        """Pending: ``url`` is an article with this content in this run."""

    @abstractmethod
    def confirm(self) -> int:
        """Make this run's pending URL state the state later runs see; returns the URL count."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (idempotent)."""

    def describe(self) -> str:
        """Where the state lives, for logs."""
        return type(self).__name__
