"""Record types of the export contract (``shared/contract/records.md``, schema version 1).

Dataclasses with Optional defaults so an item loader can fill them field by field;
pipelines read them through ItemAdapter and never depend on the concrete class.
Fields beyond the contract (``id``, ``*_raw`` of link dates, ``revision``, ...) are
additions the contract allows; they are declared in the JSON Schemas too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


@dataclass
class LinkEntry:
    """One entry of a related / more-in-category list, as embedded in an article."""

    title: str | None = None
    url: str | None = None
    snippet: str | None = None
    published_at: str | None = None
    published_at_raw: str | None = None


@dataclass
class Snapshot:
    """Provenance of the snapshot: who collected it, when, and from where."""

    collector: str | None = None
    captured_at: str | None = None
    captured_at_raw: str | None = None
    original_url: str | None = None
    disclaimer: str | None = None
    notice: str | None = None


@dataclass
class ArticleItem:
    """One snapshot article page."""

    type: str = "article"
    schema_version: int = SCHEMA_VERSION
    id: str | None = None
    url: str | None = None
    title: str | None = None
    category: str | None = None
    published_at: str | None = None
    published_at_raw: str | None = None
    source: str | None = None
    reposted_from: str | None = None
    body: str | None = None
    language: str | None = None
    snapshot: dict[str, Any] = field(default_factory=dict)
    related: list[dict[str, Any]] = field(default_factory=list)
    more_in_category: list[dict[str, Any]] = field(default_factory=list)
    fetched_at: str | None = None
    content_hash: str | None = None
    cluster_id: str | None = None
    duplicate_of: str | None = None
    duplicate_kind: str | None = None
    revision: int = 1
    previous_content_hash: str | None = None
    profile: str | None = None


@dataclass
class LinkItem:
    """One related / more-in-category entry as its own record (the links export)."""

    type: str = "link"
    schema_version: int = SCHEMA_VERSION
    from_url: str | None = None
    list: str | None = None
    position: int | None = None
    title: str | None = None
    url: str | None = None
    snippet: str | None = None
    published_at: str | None = None
    published_at_raw: str | None = None


@dataclass
class RejectedItem:
    """A record that failed schema validation: kept with its errors, never silently dropped."""

    type: str = "rejected"
    schema_version: int = SCHEMA_VERSION
    record_type: str | None = None
    page_url: str | None = None
    errors: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
