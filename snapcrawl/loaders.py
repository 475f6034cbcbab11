"""Item loaders: where raw page values meet the named processors of :mod:`snapcrawl.processors`.

Page classes add raw strings; the loaders normalise them. Context keys used by processors:
``tz`` (site time zone), ``reference`` (aware datetime for relative dates), ``base_url``,
``tracking`` (tracking-parameter patterns) and ``strip_index``.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from itemloaders import ItemLoader
from itemloaders.processors import Identity, Join, MapCompose, TakeFirst

from snapcrawl.items import ArticleItem, LinkEntry, Snapshot
from snapcrawl.processors import (
    iso_datetime,
    none_if_empty,
    normalize_space,
    original_url,
    url_processor,
)


def _strip_decor(text: str) -> str:
    """Drop list/breadcrumb decoration around short values: ``【科技】``, ``[财经]``, ``>>``."""
    return text.strip(" 【】[]《》<>»«|｜丨/:：-—·•")


class LinkEntryLoader(ItemLoader):
    """One related / more-in-category entry."""

    default_item_class = LinkEntry
    default_output_processor = TakeFirst()
    title_in = MapCompose(normalize_space, none_if_empty)
    url_in = MapCompose(url_processor)
    snippet_in = MapCompose(normalize_space, none_if_empty)
    published_at_in = MapCompose(normalize_space, iso_datetime)
    published_at_raw_in = MapCompose(normalize_space, none_if_empty)


_LINK_FIELDS = ("title", "url", "snippet", "published_at", "published_at_raw")


def load_link_entry(raw: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """One list entry through :class:`LinkEntryLoader`'s own field processors.

    The processors are the loader's (declared once, above); they are applied directly because
    a page has dozens of entries and a loader instance per entry cost ~45 % of extraction time.
    """
    out: dict[str, Any] = {}
    for name, steps in _link_steps():
        value = raw.get(name)
        for func, wants_context in steps:
            if value is None:
                break
            value = func(value, context) if wants_context else func(value)
        out[name] = value
    return out


@cache
def _link_steps() -> tuple[tuple[str, tuple[tuple[Any, bool], ...]], ...]:
    """Each link field's MapCompose functions, read once from :class:`LinkEntryLoader`."""
    return tuple(
        (
            name,
            tuple(
                (f, "loader_context" in inspect.signature(f).parameters)
                for f in getattr(LinkEntryLoader, f"{name}_in").functions
            ),
        )
        for name in _LINK_FIELDS
    )


class SnapshotLoader(ItemLoader):
    """The snapshot provenance block."""

    default_item_class = Snapshot
    default_output_processor = TakeFirst()
    collector_in = MapCompose(normalize_space, str.lower, none_if_empty)
    captured_at_in = MapCompose(normalize_space, iso_datetime)
    captured_at_raw_in = MapCompose(normalize_space, none_if_empty)
    original_url_in = MapCompose(original_url)
    disclaimer_in = MapCompose(normalize_space, none_if_empty)
    disclaimer_out = Join(" ")
    notice_in = MapCompose(normalize_space, none_if_empty)
    notice_out = Join(" ")


class ArticleLoader(ItemLoader):
    """The article record (everything but the pipeline-filled dedup fields)."""

    default_item_class = ArticleItem
    default_output_processor = TakeFirst()
    url_in = MapCompose(url_processor)
    title_in = MapCompose(normalize_space, none_if_empty)
    category_in = MapCompose(normalize_space, _strip_decor, none_if_empty)
    published_at_in = MapCompose(normalize_space, iso_datetime)
    published_at_raw_in = MapCompose(normalize_space, none_if_empty)
    source_in = MapCompose(normalize_space, _strip_decor, none_if_empty)
    reposted_from_in = MapCompose(normalize_space, _strip_decor, none_if_empty)
    body_in = MapCompose(normalize_space, none_if_empty)
    body_out = Join("\n\n")
    related_in = Identity()
    related_out = Identity()
    more_in_category_in = Identity()
    more_in_category_out = Identity()
