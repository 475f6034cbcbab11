"""The validation fast path (fastjsonschema) must judge every record as jsonschema does.

The crawl accepts a record on the fast check alone, so a record the fast check passes and
jsonschema would reject is an invalid record in the clean export. Checked on every article of
the sample site and on hypothesis mutations of them (field values replaced by other JSON).
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from functools import cache
from typing import Any

from fastjsonschema import JsonSchemaException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itemadapter import ItemAdapter
from scrapy.http import HtmlResponse

from snapcrawl.pages.snapshot import ARTICLE, SnapshotPage
from snapcrawl.processors import content_hash, record_id
from snapcrawl.sample.site import build_site
from snapcrawl.schemas import fast_validator, validator


@cache
def records() -> list[dict[str, Any]]:
    """Every article of the sample site, as the export writes it (dedup fields filled)."""
    site = build_site()
    out = []
    fetched = datetime(2026, 11, 25, tzinfo=timezone.utc)
    for path in site.article_paths():
        page = site.pages[path]
        response = HtmlResponse("http://127.0.0.1:8000" + path, body=page.body, headers=page.headers)
        result = SnapshotPage(response, None, fetched_at=fetched).result()
        if result.kind != ARTICLE or result.article is None:
            continue
        data = ItemAdapter(result.article).asdict()
        data["id"] = data["cluster_id"] = record_id(data["url"])
        data["content_hash"] = content_hash(data["title"], data["body"])
        out.append(data)
    return out


def agree(data: dict[str, Any]) -> bool:
    """Whether the fast check is valid; asserts jsonschema says the same."""
    try:
        fast_validator("article")(data)
        fast_ok = True
    except JsonSchemaException:
        fast_ok = False
    errors = list(validator("article").iter_errors(data))
    assert fast_ok == (not errors), (fast_ok, [e.message for e in errors][:3])
    return fast_ok


def test_every_sample_article_is_valid_to_both() -> None:
    assert len(records()) > 60
    assert all(agree(r) for r in records())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
# values that are near misses of what the schema wants
NEAR = st.sampled_from(
    [
        "",
        " ",
        "2024-09-24 15:46:00",
        "2024-09-24T15:46:00",
        "2024-09-24T15:46:00+08:00",
        "2024-13-40T25:61:00+08:00",
        "http://a.example/x.html",
        "ftp://a.example/x",
        "/relative.html",
        "zh",
        "abc",
        "0" * 64,
        "g" * 64,
        "article",
        "link",
        0,
        1,
        -1,
        True,
        None,
        [],
        {},
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(draw(st.sampled_from(records())))
    for _ in range(draw(st.integers(1, 3))):
        value = draw(NEAR | JSON)
        where = draw(st.sampled_from(["top", "snapshot", "related", "more_in_category", "new_key", "delete"]))
        if where == "top":
            data[draw(st.sampled_from(sorted(data)))] = value
        elif where == "snapshot" and isinstance(data.get("snapshot"), dict) and data["snapshot"]:
            data["snapshot"][draw(st.sampled_from(sorted(data["snapshot"])))] = value
        elif where in ("related", "more_in_category") and isinstance(data.get(where), list) and data[where]:
            entry = draw(st.sampled_from(data[where]))
            if isinstance(entry, dict) and entry:
                entry[draw(st.sampled_from(sorted(entry)))] = value
        elif where == "new_key":
            data[draw(st.text(min_size=1, max_size=8))] = value
        elif where == "delete" and data:
            data.pop(draw(st.sampled_from(sorted(data))))
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_fast_check_agrees_with_jsonschema_on_mutated_records(data: dict[str, Any]) -> None:
    agree(data)
