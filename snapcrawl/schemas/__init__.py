"""The JSON Schemas of the export contract, one file per record type."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent
SCHEMA_FILES = {"article": "article.schema.json", "link": "link.schema.json"}


@cache
def load_schema(record_type: str) -> dict[str, Any]:
    """The parsed schema for ``article`` or ``link`` records."""
    try:
        name = SCHEMA_FILES[record_type]
    except KeyError:
        raise ValueError(f"no schema for record type {record_type!r} (known: {', '.join(SCHEMA_FILES)})") from None
    # importlib.resources, not a path: inside a zipped egg (scrapyd) there is no directory to read
    return json.loads(files(__package__).joinpath(name).read_text(encoding="utf-8"))


def validator(record_type: str) -> Any:
    """A compiled Draft 2020-12 validator for one record type."""
    from jsonschema import Draft202012Validator

    schema = load_schema(record_type)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
