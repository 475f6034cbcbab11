"""Small, pure normalisation functions, attached to items through itemloaders processors.

Every function here takes plain values and returns plain values: no I/O, no globals that
change, so each is tested by a parametrize table (tests/test_processors.py).
Functions that need page context (time zone, reference time, base URL) read it from the
itemloaders ``loader_context`` when used in a loader, or take it as keyword arguments.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from w3lib.url import canonicalize_url as w3lib_canonicalize_url

DEFAULT_TZ = "Asia/Shanghai"
#: Query parameters that only track where a click came from; fnmatch patterns, case-insensitive.
DEFAULT_TRACKING_PARAMS: tuple[str, ...] = (
    "utm_*",
    "from",
    "spm",
    "fromsource",
    "share_token",
    "wfr",
    "gclid",
    "fbclid",
    "_hsenc",
    "_hsmi",
)
#: Values that mean "no original URL" on snapshot pages.
EMPTY_VALUES = frozenset(
    {
        "",
        "暂无",
        "无",
        "空",
        "未知",
        "null",
        "none",
        "n/a",
        "na",
        "-",
        "--",
        "—",
        "unavailable",
        "not available",
        "unknown",
    }
)

# --------------------------------------------------------------------------- whitespace

# NBSP, full-width space, the Unicode space family, zero-width characters, BOM, and ASCII
# whitespace all fold to one ASCII space. Zero-width characters vanish entirely.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES_RE = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def normalize_space(text: str | None) -> str:
    """Fold every kind of space (incl. U+3000 and ``&nbsp;``) to one ASCII space and trim.

    ``str.split()`` splits on exactly the Unicode whitespace ``_SPACES_RE`` names and is ~10x
    faster on CJK text than a regex or ``translate``; zero-width characters are removed only
    when present (this function runs on every line of every page).
    """
    if not text:
        return ""
    if "\u200b" in text or "\ufeff" in text or "\u200c" in text or "\u200d" in text or "\u2060" in text:
        text = text.translate(_ZERO_WIDTH)
    return " ".join(text.split())


def none_if_empty(text: str | None) -> str | None:
    """Empty strings become ``None`` (the contract uses null for 'the page shows none')."""
    return text if text else None


def strip_label(text: str | None, labels: Iterable[str] = ()) -> str:
    """Remove a leading ``label:`` (half- or full-width colon) from ``text``."""
    value = normalize_space(text)
    for label in labels:
        m = re.match(rf"\s*{re.escape(label)}\s*[:：]?\s*", value, re.I)
        if m:
            return value[m.end() :].strip()
    return value


# " - Site" needs spaces around the dash (headlines hold dashes: "2024-2025"); "_", "|" and "丨" do not
_SITE_SUFFIX_RE = re.compile(r"(?:\s+[-—–]+\s+|\s*[_|｜丨]+\s*)(?:(?!\s[-—–]+\s)[^_|｜丨]){1,30}$")


def strip_site_suffix(title: str, *, site_names: Iterable[str] = ()) -> str:
    """Drop a trailing `` - 站点名`` / ``_某某网`` / ``| Site`` from a <title> text.

    Only the last separator-delimited part is removed, and only if what remains is still a
    plausible headline (at least 4 characters): headlines themselves contain dashes.
    """
    title = normalize_space(title)
    for name in site_names:
        if name and title.endswith(name):
            return re.sub(r"[\s\-_|｜—–丨]+$", "", title[: -len(name)]) or title
    m = _SITE_SUFFIX_RE.search(title)
    if m and m.start() >= 4:
        return title[: m.start()]
    return title


# --------------------------------------------------------------------------- dates


@lru_cache(maxsize=64)
def get_zone(name: str | None) -> ZoneInfo:
    """Return the named IANA zone, raising ``ValueError`` naming the bad value."""
    try:
        return ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


_TZ_SUFFIX = r"(?:\s*(?P<tz>Z|UTC|GMT|CST|北京时间|(?:UTC|GMT)?\s*[+-]\d{1,2}(?::?\d{2})?))?"
_TIME = r"(?:[\sT]*(?P<H>\d{1,2})\s*[:：时]\s*(?P<M>\d{1,2})(?:\s*[:：分]\s*(?P<S>\d{1,2})(?:\.\d+)?\s*秒?)?分?)?"
_AMPM = r"(?:\s*(?P<ampm>AM|PM|am|pm|a\.m\.|p\.m\.|上午|下午|晚上))?"
_ABS_YMD_RE = re.compile(
    r"(?P<y>(?:19|20)\d{2})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?" + _TIME + _AMPM + _TZ_SUFFIX
)
_ABS_MD_RE = re.compile(r"(?<![\d/.-])(?P<m>\d{1,2})\s*[-/月]\s*(?P<d>\d{1,2})\s*日?" + _TIME + _TZ_SUFFIX)
_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_EN_MDY_RE = re.compile(
    r"(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+"
    r"(?P<y>(?:19|20)\d{2})(?:,?\s*(?:at\s+)?" + _TIME[3:] + _AMPM + _TZ_SUFFIX,
    re.I,
)
_EN_DMY_RE = re.compile(
    r"(?P<d>\d{1,2})\s+(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+"
    r"(?P<y>(?:19|20)\d{2})(?:,?\s*(?:at\s+)?" + _TIME[3:] + _AMPM + _TZ_SUFFIX,
    re.I,
)
_EN_MD_TIME_RE = re.compile(
    r"(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?P<d>\d{1,2}),?\s+(?:at\s+)?"
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?" + _AMPM + _TZ_SUFFIX,
    re.I,
)
_REL_AGO_RE = re.compile(
    r"(?P<n>\d+|半|一|两|二|三|四|五|六|七|八|九|十)\s*(?P<unit>秒|分钟|分|小时|个小时|天|日|周|星期|个月|月|年"
    r"|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)\s*(?:前|ago)",
    re.I,
)
_REL_DAY_RE = re.compile(
    r"(?P<word>今天|今日|昨天|昨日|前天|today|yesterday)\s*(?P<H>\d{1,2})?(?:\s*[:：]\s*(?P<M>\d{2}))?", re.I
)
_JUST_NOW_RE = re.compile(r"刚刚|刚才|just now|moments? ago", re.I)
_CN_NUM = {
    "半": 0.5,
    "一": 1,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_UNIT_SECONDS = {
    "秒": 1,
    "分钟": 60,
    "分": 60,
    "小时": 3600,
    "个小时": 3600,
    "天": 86400,
    "日": 86400,
    "周": 604800,
    "星期": 604800,
    "个月": 2592000,
    "月": 2592000,
    "年": 31536000,
}


def _unit_seconds(unit: str) -> int:
    unit_l = unit.lower()
    if unit_l in _UNIT_SECONDS:
        return _UNIT_SECONDS[unit_l]
    for prefix, secs in (
        ("sec", 1),
        ("min", 60),
        ("h", 3600),
        ("d", 86400),
        ("w", 604800),
        ("mon", 2592000),
        ("y", 31536000),
    ):
        if unit_l.startswith(prefix):
            return secs
    raise ValueError(unit)


def _parse_tz(token: str | None, default: ZoneInfo) -> timezone | ZoneInfo:
    if not token:
        return default
    token = token.strip().upper()
    if token in ("Z", "UTC", "GMT"):
        return timezone.utc
    if token in ("CST", "北京时间"):  # on Chinese sites CST is China Standard Time
        return get_zone("Asia/Shanghai")
    m = re.search(r"([+-])(\d{1,2}):?(\d{2})?", token)
    if not m:
        return default
    sign = -1 if m.group(1) == "-" else 1
    return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))


def _hour_24(hour: int, ampm: str | None) -> int:
    if not ampm:
        return hour
    pm = ampm.lower().startswith("p") or ampm in ("下午", "晚上")
    if pm and hour < 12:
        return hour + 12
    if not pm and hour == 12:
        return 0
    return hour


def _build(y: int, mo: int, d: int, g: Mapping[str, Any], zone: ZoneInfo) -> datetime | None:
    try:
        hour = _hour_24(int(g.get("H") or 0), g.get("ampm"))
        return datetime(y, mo, d, hour, int(g.get("M") or 0), int(g.get("S") or 0), tzinfo=_parse_tz(g.get("tz"), zone))
    except ValueError:
        return None


def parse_datetime(
    raw: str | None, *, tz: str | None = DEFAULT_TZ, reference: datetime | None = None
) -> datetime | None:
    """Read an absolute or relative date as shown on a page; ``None`` when it is not one.

    A regex fast path covers the formats aggregators use (hundreds of times faster than
    dateparser); dateparser is the fallback for the long tail. Naive times are read in
    ``tz``; relative ones (``3小时前``, ``昨天 08:30``) and year-less ones (``09-24 15:46``)
    are resolved against ``reference`` (the snapshot or fetch time), which must be aware.
    """
    text = normalize_space(raw)
    if not text:
        return None
    m = _ABS_YMD_RE.search(text)  # first: the shape of nearly every date on aggregator pages
    if m:
        return _build(int(m["y"]), int(m["m"]), int(m["d"]), m.groupdict(), get_zone(tz))
    if not any(ch.isdigit() for ch in text) and not (
        _JUST_NOW_RE.search(text) or _REL_DAY_RE.search(text) or _REL_AGO_RE.search(text)
    ):
        return None
    zone = get_zone(tz)
    for rx in (_EN_MDY_RE, _EN_DMY_RE):
        m = rx.search(text)
        if m:
            return _build(int(m["y"]), _MONTHS[m["mon"][:3].lower()], int(m["d"]), m.groupdict(), zone)
    ref = (reference or datetime.now(timezone.utc)).astimezone(zone)
    m = _EN_MD_TIME_RE.search(text)
    if m:  # "Nov 16, 22:10 UTC": a year-less English date with a time
        return _nearest_year(int(m["d"]), m.groupdict(), zone, ref, month=_MONTHS[m["mon"][:3].lower()])
    if _JUST_NOW_RE.search(text):
        return ref.replace(microsecond=0)
    m = _REL_AGO_RE.search(text)
    if m:
        n = m["n"]
        amount = float(n) if n.isdigit() else _CN_NUM[n]
        return (ref - timedelta(seconds=amount * _unit_seconds(m["unit"]))).replace(microsecond=0)
    m = _REL_DAY_RE.search(text)
    if m:
        word = m["word"].lower()
        days = {"今天": 0, "今日": 0, "today": 0, "昨天": 1, "昨日": 1, "yesterday": 1, "前天": 2}[word]
        day = (ref - timedelta(days=days)).date()
        return datetime(day.year, day.month, day.day, int(m["H"] or 0), int(m["M"] or 0), tzinfo=zone)
    m = _ABS_MD_RE.search(text)
    if m and (m["H"] or "月" in text):
        # A year-less date takes the year that puts it nearest the reference, a date after the
        # reference counting three times its distance: "12-30" read on Jan 2 is last December's,
        # "1月5日" in a more-list rendered on Jan 3 is this January's.
        return _nearest_year(int(m["d"]), m.groupdict(), zone, ref, month=int(m["m"]))
    return _dateparser_fallback(text, zone, ref)


def _nearest_year(day: int, g: Mapping[str, Any], zone: ZoneInfo, ref: datetime, *, month: int) -> datetime | None:
    """The year-less date in the year that puts it nearest ``ref``, a date after ``ref`` counting
    three times its distance (list dates may be rendered a little after the snapshot)."""
    best: tuple[float, datetime] | None = None
    for year in (ref.year - 1, ref.year, ref.year + 1):
        dt = _build(year, month, day, g, zone)
        if dt is None:
            continue
        delta = (dt - ref).total_seconds()
        cost = delta * 3 if delta > 0 else -delta
        if best is None or cost < best[0]:
            best = (cost, dt)
    return best[1] if best else None


def _dateparser_fallback(text: str, zone: ZoneInfo, ref: datetime) -> datetime | None:
    import dateparser  # imported lazily: it costs ~0.5 s at import and is rarely needed

    if len(text) > 60:
        return None
    result = dateparser.parse(
        text,
        languages=["zh", "en"],
        settings={
            "TIMEZONE": str(zone.key),
            "RETURN_AS_TIMEZONE_AWARE": True,
            "RELATIVE_BASE": ref.replace(tzinfo=None),
            "PREFER_DATES_FROM": "past",
            "DATE_ORDER": "YMD",
        },
    )
    if result is None or result.year < 1990:
        return None
    return result.replace(microsecond=0)


def to_iso(dt: datetime | None) -> str | None:
    """ISO 8601 with its UTC offset and whole seconds, e.g. ``2024-09-24T15:46:00+08:00``."""
    if dt is None:
        return None
    return (dt.replace(microsecond=0) if dt.microsecond else dt).isoformat()


def iso_datetime(value: str | None, loader_context: Mapping[str, Any] | None = None) -> str | None:
    """itemloaders processor: date text → ISO string, using ``tz``/``reference`` from the context."""
    ctx = loader_context or {}
    return to_iso(parse_datetime(value, tz=ctx.get("tz") or DEFAULT_TZ, reference=ctx.get("reference")))


def utc_now_iso() -> str:
    """Fetch timestamps: ISO 8601 in UTC, whole seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------- URLs

_DEFAULT_PORTS = {"http": 80, "https": 443}
_INDEX_RE = re.compile(r"/(?:index|default)\.(?:s?html?|php|aspx?|jsp)$", re.I)


def strip_tracking_params(url: str, patterns: Iterable[str] = DEFAULT_TRACKING_PARAMS) -> str:
    """Remove query parameters whose name matches any fnmatch pattern (case-insensitive)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a malformed [IPv6] host: leave the string as it is
        return url
    if not parts.query:
        return url
    pats = [p.lower() for p in patterns]
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not any(fnmatchcase(k.lower(), p) for p in pats)
    ]
    return urlunsplit(parts._replace(query=urlencode(kept, doseq=True)))


def canonical_url(
    url: str | None,
    base: str | None = None,
    *,
    tracking: Iterable[str] = DEFAULT_TRACKING_PARAMS,
    strip_index: bool = False,
) -> str | None:
    """Absolute, canonical http(s) URL, or ``None`` for anything that is not one.

    Resolves against ``base``, drops tracking parameters and the fragment, lowercases
    scheme and host, drops the default port, sorts the query (w3lib), and optionally turns
    a trailing ``index.html`` into the directory (only where a site profile says the site
    serves both as the same page).

    Runs for every link of every list: links whose path is plain unreserved ASCII with no
    query (most article links) take a fast path that canonicalises only the origin (cached)
    and appends the path, which w3lib would leave unchanged; anything else goes through the
    full, cached computation. Both give the same result (tests/test_processors.py checks).
    """
    if url is None:
        return None
    url = url.strip()
    if not url or url.startswith("#"):
        return None
    tracking = tracking if isinstance(tracking, tuple) else tuple(tracking)
    base = base or None
    m = _FAST_ABS_RE.match(url)
    if m is not None:
        path = m.group(3) or "/"
        if "/." not in path and (base is None or _parses(base)):
            origin = _canonical_full(f"{m.group(1)}://{m.group(2)}/", None, (), False)
            return _join_origin(origin, path, strip_index)
    elif base is not None and _FAST_PATH_RE.match(url) and "/." not in url:
        return _join_origin(_canonical_full("/", base, (), False), url, strip_index)
    return _canonical_full(url, base, tracking, strip_index)


#: An absolute http(s) URL with a plain host (and port) and a path of unreserved characters only.
_FAST_ABS_RE = re.compile(r"(https?)://([A-Za-z0-9.-]+(?::[0-9]+)?)(/[A-Za-z0-9._~/-]*)?\Z", re.I)
#: An absolute path (not ``//host``) of unreserved characters only.
_FAST_PATH_RE = re.compile(r"/(?!/)[A-Za-z0-9._~/-]*\Z")


@lru_cache(maxsize=256)
def _parses(base: str) -> bool:
    """Whether ``urljoin`` can read ``base`` (a malformed [IPv6] host makes it raise: no URL then)."""
    try:
        urlsplit(base)
    except ValueError:
        return False
    return True


def _join_origin(origin: str | None, path: str, strip_index: bool) -> str | None:
    """``origin`` (a canonical ``scheme://host[:port]/``) with a plain path in place of its ``/``."""
    if origin is None:
        return None
    if strip_index:
        path = _INDEX_RE.sub("/", path)
    return origin[:-1] + path


@lru_cache(maxsize=16384)
def _canonical_full(url: str, base: str | None, tracking: tuple[str, ...], strip_index: bool) -> str | None:
    """:func:`canonical_url` the long way, for a stripped, non-empty ``url``; cached because the
    same links recur on many pages (and twice on one page: article lists, then dated links)."""
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:  # a malformed [IPv6] host or port in the link or the base
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        return None
    netloc = host if ":" not in host else f"[{host}]"
    if port and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = parts.path or "/"
    if strip_index:
        path = _INDEX_RE.sub("/", path)
    try:
        return _canonical_tail(urlunsplit((scheme, netloc, path, parts.query, "")), tracking)
    except ValueError:  # w3lib refuses what urlsplit let through (odd hosts): not a usable URL
        return None


@lru_cache(maxsize=16384)
def _canonical_tail(url: str, tracking: tuple[str, ...]) -> str:
    """Tracking removal + w3lib canonicalisation, cached: list URLs recur across many pages."""
    return w3lib_canonicalize_url(strip_tracking_params(url, tracking), keep_fragments=False)


def url_processor(value: str | None, loader_context: Mapping[str, Any] | None = None) -> str | None:
    """itemloaders processor: canonical absolute URL using ``base_url``/``tracking`` from context."""
    ctx = loader_context or {}
    return canonical_url(
        value,
        ctx.get("base_url"),
        tracking=ctx.get("tracking") or DEFAULT_TRACKING_PARAMS,
        strip_index=bool(ctx.get("strip_index")),
    )


def original_url(value: str | None, loader_context: Mapping[str, Any] | None = None) -> str | None:
    """The snapshot's original-article URL; empty, 暂无, 'unavailable' and non-URLs become ``None``."""
    text = normalize_space(value)
    if text.strip("：:。.").lower() in EMPTY_VALUES:
        return None
    m = re.search(r"(?:https?://|//|www\.)[^\s<>\"'，。]+", text, re.I)
    if not m:
        base = (loader_context or {}).get("base_url")
        if base and re.match(r"^(?:/|\./|\.\./)[^\s]*$", text):
            return url_processor(text, loader_context)  # a relative link, resolved against the page
        return None
    found = m.group(0)
    if found.lower().startswith("www."):
        found = "http://" + found
    return url_processor(found, loader_context)


# --------------------------------------------------------------------------- snapshot text

_HOST_RE = re.compile(
    r"(?<![A-Za-z0-9.@-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?::\d+)?(?![A-Za-z0-9-])", re.I
)


def collector_host(disclaimer: str | None) -> str | None:
    """The crawler's host named in a snapshot disclaimer (``由td.fyun.cc爬虫...`` → ``td.fyun.cc``)."""
    if not disclaimer:
        return None
    m = _HOST_RE.search(disclaimer)
    return m.group(1).lower() if m else None


# --------------------------------------------------------------------------- language / hashing

_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_RE = re.compile(r"[A-Za-z]")


def detect_language(text: str | None) -> str:
    """``zh`` or ``en`` (BCP 47), by script counts.

    Written by hand on purpose: aggregator pages are Chinese or English, and a script count
    is exact for that choice, while statistical detectors are slower and misfire on short
    texts full of Latin brand names.
    """
    if not text:
        return "und"
    sample = text[:2000]
    cjk = len(_CJK_RE.findall(sample))
    latin_words = len(re.findall(r"[A-Za-z]{2,}", sample))
    if cjk == 0 and latin_words == 0:
        return "und"
    return "zh" if cjk >= latin_words else "en"


def hash_text(text: str) -> str:
    """Normalised form for hashing: NFKC, case-folded, all whitespace removed."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())


def content_hash(title: str | None, body: str | None) -> str:
    """Hex digest of the normalised title + body; equal for copies that differ only in spacing."""
    data = hash_text(title or "") + "\x00" + hash_text(body or "")
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def record_id(url: str) -> str:
    """Stable id of a record: the first 20 hex digits of SHA-1 of its canonical URL."""
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:20]


# --------------------------------------------------------------------------- encodings

_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_-]+)""", re.I)
_ENCODING_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "big5": "big5hkscs",
    "utf8": "utf-8",
}


def normalize_encoding(name: str | None) -> str | None:
    """Canonical codec name; GB2312/GBK are read as their superset GB18030 (pages mislabel them)."""
    if not name:
        return None
    key = name.strip().strip("\"'").lower()
    key = _ENCODING_ALIASES.get(key, key)
    import codecs

    try:
        return codecs.lookup(key).name
    except (LookupError, ValueError):  # unknown name, or one with a NUL in it
        return None


def declared_encoding(content_type: str | None, body: bytes) -> str | None:
    """The charset the server (Content-Type) or the page (<meta>) declares, header first."""
    if content_type:
        m = re.search(r"charset\s*=\s*[\"']?([\w-]+)", content_type, re.I)
        if m:
            enc = normalize_encoding(m.group(1))
            if enc:
                return enc
    meta = _META_CHARSET_RE.search(body[:4096])
    if meta:
        return normalize_encoding(meta.group(1).decode("ascii", "ignore"))
    return None


def _cjk_score(text: str) -> float:
    if not text:
        return 0.0
    common = sum(1 for ch in text if ch in _COMMON_HANZI)
    return common / max(1, len(_CJK_RE.findall(text)))


# The most frequent characters of Chinese news text (simplified and traditional): a decoding
# that produces many of them is right; a wrong double-byte decoding produces rare characters.
_COMMON_HANZI = frozenset(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
    "民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那"
    "社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通"
    "并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区"
    "强放决西被干做必战先回则任取据处理府研质信报记者网讯区市省县镇乡科技金融银行新闻记者社会体育财经国际报道发布时间来源"
    "們國這個時來為對會說後發業點從經與關機進現開學應當實種過義麼沒長問體們電話聞報導記體資訊區縣鄉銀財經國際"
)


def sniff_encoding(body: bytes, content_type: str | None = None) -> str:
    """The encoding to decode a Chinese/English page with: declared if valid, else detected.

    A declared charset wins when the bytes decode cleanly under it. Otherwise UTF-8 is tried
    strictly; then GB18030 and Big5 are both tried and the one yielding more common Han
    characters wins (a wrong double-byte decoding gives rare ones); charset-normalizer
    settles anything else. Scrapy's own fallback (cp1252) turns undeclared GBK into mojibake.
    """
    declared = declared_encoding(content_type, body)
    sample = body[:65536]
    if declared:
        try:
            sample.decode(declared)
            return declared
        except UnicodeDecodeError as exc:
            # a multi-byte character cut at the sample's end is not a wrong declaration
            if exc.start >= len(sample) - 4 and len(body) > len(sample):
                return declared
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4 and len(body) > len(sample):
            return "utf-8"
    candidates: list[tuple[float, str]] = []
    for enc in ("gb18030", "big5hkscs"):
        try:
            candidates.append((_cjk_score(sample.decode(enc)), enc))
        except UnicodeDecodeError:
            continue
    if candidates:
        return max(candidates)[1]
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    return normalize_encoding(best.encoding if best else None) or declared or "utf-8"
