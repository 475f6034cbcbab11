"""Declarative per-site profiles: TOML files that override the generic extractor field by field.

A profile is data, never code: it is parsed with :mod:`tomllib` and every key is checked
against the schema below, so a typo fails at start with the file and key named, and a
regular expression or CSS selector that does not compile fails the same way.

Profiles are picked by the page's domain (``domains``, suffix match), by a ``<meta>`` tag
the site's pages carry (``[match.meta]``), or explicitly with ``-a profile=NAME``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from parsel.csstranslator import HTMLTranslator

BUILTIN_DIR = Path(__file__).parent
FIELDS = (
    "title",
    "category",
    "published_at",
    "source",
    "reposted_from",
    "body",
    "collector",
    "captured_at",
    "original_url",
    "disclaimer",
    "notice",
)
LISTS = ("related", "more_in_category")
_TOP_KEYS = {
    "name",
    "description",
    "domains",
    "match",
    "timezone",
    "render_js",
    "fields",
    "labels",
    "lists",
    "links",
    "urls",
    "crawl",
}
_FIELD_KEYS = {"css", "xpath", "regex", "join", "fallback"}
_LIST_KEYS = {"entries", "title", "url", "snippet", "date"}
_LINK_KEYS = {"follow", "deny", "article", "listing"}
_URL_KEYS = {"strip_index_html", "tracking_params"}
#: Politeness and rendering knobs a profile may set for its domains (see README, settings table).
_CRAWL_KEYS = {"download_delay", "concurrency", "autothrottle_target_concurrency", "obey_robots", "render_js_wait"}


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class FieldRule:
    """How a profile finds one field: a CSS or XPath selector, optionally narrowed by a regex."""

    css: str | None = None
    xpath: str | None = None
    regex: re.Pattern[str] | None = None
    join: str = " "
    fallback: bool = True  # when the selector matches nothing, let the generic rule try

    def describe(self) -> str:
        return f"css:{self.css}" if self.css else f"xpath:{self.xpath}"


@dataclass(frozen=True)
class ListRule:
    """Selectors for a link list: ``entries`` selects each entry, the rest are relative to it."""

    entries: str
    title: str | None = None
    url: str | None = None
    snippet: str | None = None
    date: str | None = None


@dataclass(frozen=True)
class Profile:
    """One site's overrides; everything not given falls back to the generic extractor."""

    name: str
    path: str = "<builtin>"
    description: str = ""
    domains: tuple[str, ...] = ()
    match_meta: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "Asia/Shanghai"
    render_js: bool = False
    fields: Mapping[str, FieldRule] = field(default_factory=dict)
    labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    lists: Mapping[str, ListRule] = field(default_factory=dict)
    follow: tuple[re.Pattern[str], ...] = ()
    deny: tuple[re.Pattern[str], ...] = ()
    article_url: re.Pattern[str] | None = None
    listing_url: re.Pattern[str] | None = None
    strip_index_html: bool = False
    tracking_params: tuple[str, ...] = ()
    crawl: Mapping[str, Any] = field(default_factory=dict)

    def matches_domain(self, host: str) -> bool:
        host = host.lower()
        return any(host == d or host.endswith("." + d) for d in self.domains)


def _err(path: Path | str, key: str, msg: str) -> ProfileError:
    return ProfileError(f"{path}: key '{key}': {msg}")


def _check_keys(path: Path, where: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for key in table:
        if key not in allowed:
            full = f"{where}.{key}" if where else key
            raise _err(path, full, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _str(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _err(path, key, f"must be a non-empty string, got {value!r}")
    return value


def _str_list(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _err(path, key, f"must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def _bool(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _err(path, key, f"must be true or false, got {value!r}")
    return value


def _regex(path: Path, key: str, value: Any) -> re.Pattern[str]:
    try:
        return re.compile(_str(path, key, value))
    except re.error as exc:
        raise _err(path, key, f"invalid regular expression: {exc}") from exc


_CSS = HTMLTranslator()


def _css(path: Path, key: str, value: Any) -> str:
    css = _str(path, key, value)
    try:
        _CSS.css_to_xpath(css)
    except Exception as exc:  # cssselect raises several error types
        raise _err(path, key, f"invalid CSS selector: {exc}") from exc
    return css


def _xpath(path: Path, key: str, value: Any) -> str:
    from lxml import etree

    xp = _str(path, key, value)
    try:
        etree.XPath(xp)
    except etree.XPathSyntaxError as exc:
        raise _err(path, key, f"invalid XPath: {exc}") from exc
    return xp


def parse_profile(data: Mapping[str, Any], path: Path) -> Profile:
    """Validate one profile's parsed TOML; raise :class:`ProfileError` naming file and key."""
    _check_keys(path, "", data, _TOP_KEYS)
    name = _str(path, "name", data.get("name", path.stem))
    tz = data.get("timezone", "Asia/Shanghai")
    from snapcrawl.processors import get_zone

    try:
        get_zone(_str(path, "timezone", tz))
    except ValueError as exc:
        raise _err(path, "timezone", str(exc)) from exc
    render_js = data.get("render_js", False)
    if not isinstance(render_js, bool):
        raise _err(path, "render_js", f"must be true or false, got {render_js!r}")

    match = data.get("match", {})
    if not isinstance(match, dict):
        raise _err(path, "match", "must be a table")
    _check_keys(path, "match", match, {"meta"})
    meta = match.get("meta", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _err(path, "match.meta", "must be a table of meta name = content strings")

    fields: dict[str, FieldRule] = {}
    for fname, rule in (data.get("fields") or {}).items():
        key = f"fields.{fname}"
        if fname not in FIELDS:
            raise _err(path, key, f"unknown field (known: {', '.join(FIELDS)})")
        if isinstance(rule, str):
            rule = {"css": rule}
        if not isinstance(rule, dict):
            raise _err(path, key, "must be a CSS selector string or a table")
        _check_keys(path, key, rule, _FIELD_KEYS)
        if ("css" in rule) == ("xpath" in rule):
            raise _err(path, key, "needs exactly one of 'css' or 'xpath'")
        fields[fname] = FieldRule(
            css=_css(path, f"{key}.css", rule["css"]) if "css" in rule else None,
            xpath=_xpath(path, f"{key}.xpath", rule["xpath"]) if "xpath" in rule else None,
            regex=_regex(path, f"{key}.regex", rule["regex"]) if "regex" in rule else None,
            join=str(rule.get("join", " ")),
            fallback=_bool(path, f"{key}.fallback", rule.get("fallback", True)),
        )

    labels: dict[str, tuple[str, ...]] = {}
    for fname, words in (data.get("labels") or {}).items():
        if fname not in FIELDS:
            raise _err(path, f"labels.{fname}", f"unknown field (known: {', '.join(FIELDS)})")
        labels[fname] = _str_list(path, f"labels.{fname}", words)

    lists: dict[str, ListRule] = {}
    for lname, rule in (data.get("lists") or {}).items():
        key = f"lists.{lname}"
        if lname not in LISTS:
            raise _err(path, key, f"unknown list (known: {', '.join(LISTS)})")
        if not isinstance(rule, dict):
            raise _err(path, key, "must be a table")
        _check_keys(path, key, rule, _LIST_KEYS)
        if "entries" not in rule:
            raise _err(path, f"{key}.entries", "is required")
        lists[lname] = ListRule(**{k: _css(path, f"{key}.{k}", v) for k, v in rule.items()})

    links = data.get("links", {})
    if not isinstance(links, dict):
        raise _err(path, "links", "must be a table")
    _check_keys(path, "links", links, _LINK_KEYS)
    urls = data.get("urls", {})
    if not isinstance(urls, dict):
        raise _err(path, "urls", "must be a table")
    _check_keys(path, "urls", urls, _URL_KEYS)
    strip_index = urls.get("strip_index_html", False)
    if not isinstance(strip_index, bool):
        raise _err(path, "urls.strip_index_html", "must be true or false")
    crawl = data.get("crawl", {})
    if not isinstance(crawl, dict):
        raise _err(path, "crawl", "must be a table")
    _check_keys(path, "crawl", crawl, _CRAWL_KEYS)
    for key, value in crawl.items():
        if key == "obey_robots":
            if not isinstance(value, bool):
                raise _err(path, f"crawl.{key}", "must be true or false")
        elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise _err(path, f"crawl.{key}", f"must be a non-negative number, got {value!r}")

    return Profile(
        name=name,
        path=str(path),
        description=str(data.get("description", "")),
        domains=tuple(d.lower().lstrip(".") for d in _str_list(path, "domains", data.get("domains", []) or [])),
        match_meta=dict(meta),
        timezone=tz,
        render_js=render_js,
        fields=fields,
        labels=labels,
        lists=lists,
        follow=tuple(
            _regex(path, "links.follow", r) for r in _str_list(path, "links.follow", links.get("follow", []) or [])
        ),
        deny=tuple(_regex(path, "links.deny", r) for r in _str_list(path, "links.deny", links.get("deny", []) or [])),
        article_url=_regex(path, "links.article", links["article"]) if "article" in links else None,
        listing_url=_regex(path, "links.listing", links["listing"]) if "listing" in links else None,
        strip_index_html=strip_index,
        tracking_params=_str_list(path, "urls.tracking_params", urls.get("tracking_params", []) or []),
        crawl=dict(crawl),
    )


def load_profile(path: Path | str | Traversable) -> Profile:
    """Read and validate one TOML profile file (a path, or a package resource)."""
    path = Path(path) if isinstance(path, str) else path
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from exc
    return parse_profile(data, path if isinstance(path, Path) else Path(str(path)))


class ProfileRegistry:
    """All known profiles: the built-in folder plus any extra folders from settings."""

    def __init__(self, profiles: Iterable[Profile]) -> None:
        self.profiles: dict[str, Profile] = {}
        for profile in profiles:
            if profile.name in self.profiles:
                other = self.profiles[profile.name].path
                raise ProfileError(f"{profile.path}: key 'name': profile {profile.name!r} already defined in {other}")
            self.profiles[profile.name] = profile

    @classmethod
    def from_dirs(cls, dirs: Iterable[Path | str] = ()) -> ProfileRegistry:
        # importlib.resources, not a path: inside a zipped egg (scrapyd) there is no directory to glob
        builtin = files(__package__)
        paths: list[Path | Traversable] = sorted(
            (p for p in builtin.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name
        )
        for d in dirs:
            d = Path(d)
            if not d.is_dir():
                raise ProfileError(f"{d}: SNAPCRAWL_PROFILES_DIRS entry is not a directory")
            paths.extend(sorted(d.glob("*.toml")))
        return cls(load_profile(p) for p in paths)

    def get(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ProfileError(f"unknown profile {name!r} (known: {known})") from None

    def for_host(self, host: str) -> Profile | None:
        """The profile whose ``domains`` cover ``host`` (longest domain wins)."""
        best: tuple[int, Profile] | None = None
        for profile in self.profiles.values():
            for d in profile.domains:
                if (host == d or host.endswith("." + d)) and (best is None or len(d) > best[0]):
                    best = (len(d), profile)
        return best[1] if best else None

    def for_meta(self, meta: Mapping[str, str]) -> Profile | None:
        """The profile whose ``[match.meta]`` tags all appear on the page."""
        for profile in self.profiles.values():
            if profile.match_meta and all(meta.get(k) == v for k, v in profile.match_meta.items()):
                return profile
        return None
