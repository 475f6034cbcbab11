"""The snapshot page object: an HTML response in, a typed article record out, no I/O.

One class serves every site. Each field is found by, in order: the site profile's selector
(when a profile is given and its selector matches), then the generic label-driven rules
working on the page's visible lines (:mod:`snapcrawl.pages.dom`). ``explain()`` says which
rule produced each field, for operators debugging a new site.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from typing import Any

from lxml import etree
from parsel import Selector
from parsel.csstranslator import HTMLTranslator
from scrapy.http import TextResponse
from scrapy.utils.response import get_base_url

from snapcrawl.items import ArticleItem, LinkItem
from snapcrawl.loaders import ArticleLoader, FastLoader, SnapshotLoader, load_link_entry
from snapcrawl.pages import vocabulary as V
from snapcrawl.pages.dom import HEADING_TAGS, Line, element_text, is_ancestor, linearize
from snapcrawl.processors import (
    DEFAULT_TRACKING_PARAMS,
    DEFAULT_TZ,
    canonical_url,
    collector_host,
    detect_language,
    normalize_space,
    parse_datetime,
    record_id,
    strip_site_suffix,
)
from snapcrawl.profiles import FieldRule, ListRule, Profile

ARTICLE, LISTING, EMPTY, UNPARSEABLE = "article", "listing", "empty", "unparseable"

_EN_DATE = (
    r"(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}"
    r"|\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+\d{4}"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?(?=\s*(?:at\s+)?\d{1,2}:\d{2}))"
    r"(?:,?\s*(?:at\s+)?\d{1,2}:\d{2}(?::\d{2})?\s*(?:am|pm)?)?(?:\s*(?:UTC|GMT|[+-]\d{2}:?\d{2}))?"
)
_DATE_ONLY_RE = re.compile(
    r"^[\[(（【]?\s*(?:(?:19|20)\d{2}\s*[-/.年]\s*)?\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"
    r"(?:[\sT]*\d{1,2}[:：]\d{2}(?::\d{2})?)?(?:\s*(?:UTC|GMT|Z|[+-]\d{2}:?\d{2}))?\s*[\])）】]?$"
    r"|^[\[(（]?\s*(?:\d+\s*(?:秒|分钟|小时|天|周|个月|年)前|刚刚|(?:今天|昨天|前天)\s*\d{1,2}:\d{2})\s*[\])）]?$"
    r"|^" + _EN_DATE + r"$"
    r"|^\d+\s+(?:minutes?|hours?|days?|weeks?)\s+ago$",
    re.I,
)
_TRAILING_DATE_RE = re.compile(
    r"\s*[\[(（【]?((?:(?:19|20)\d{2}[-/.年])?\d{1,2}[-/.月]\d{1,2}日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?|"
    + _EN_DATE
    + r")[\])）】]?\s*$",
    re.I,
)
_ANY_DATE_RE = re.compile(
    r"(?:19|20)\d{2}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?(?:[\sT]*\d{1,2}[:：]\d{2}(?:[:：]\d{2})?)?|"
    + _EN_DATE,
    re.I,
)
_LEADING_DATE_RE = re.compile(
    r"^\s*[\[(（【]?((?:(?:19|20)\d{2}\s*[-/.年]\s*)?\d{1,2}\s*[-/.月]\s*\d{1,2}日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?|"
    + _EN_DATE
    + r")[\])）】]?\s+",
    re.I,
)
_CJK_CHAR_RE = re.compile(r"[\u3400-\u9fff]")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[。！？!?；;])|(?<=[.])\s+(?=[A-Z])")
_VALUE_SEPS = " \t|｜丨/·•,，;；:：-—_"
_SNIPPET_TRIM = " |｜丨·•"
_SHORT_FIELDS = {"category": 24, "source": 40, "reposted_from": 60}


@dataclass
class _Candidate:
    field: str
    label: str
    value: str
    line: int
    href: str | None = None


@dataclass
class _ListFound:
    kind: str  # related | more_in_category
    heading_line: int
    heading_text: str
    category: str | None
    entries: list[dict[str, Any]] = field(default_factory=list)
    elements: list[etree._Element] = field(default_factory=list)
    rule: str = "heading"


@dataclass
class PageResult:
    """What a page object hands the spider: the kind of page and, for articles, the records."""

    kind: str
    url: str
    article: ArticleItem | None = None
    links: list[LinkItem] = field(default_factory=list)
    explain: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class SnapshotPage:
    """A page of a snapshot aggregator, article or listing, read without I/O."""

    def __init__(
        self,
        response: TextResponse,
        profile: Profile | None = None,
        *,
        fetched_at: datetime | None = None,
        tracking: tuple[str, ...] = DEFAULT_TRACKING_PARAMS,
    ) -> None:
        self.response = response
        self.fetched_at = (fetched_at or datetime.now(timezone.utc)).replace(microsecond=0)
        self._base_tracking = tuple(tracking)
        try:
            self.base_url = get_base_url(response)  # honours <base href>: relative links resolve against it
        except ValueError:  # a <base href> that is not a URL: fall back to the page's own
            self.base_url = response.url
        self._use_profile(profile)

    def _use_profile(self, profile: Profile | None) -> None:
        """Everything that depends on the profile; the rest of the page is computed lazily."""
        self.profile = profile
        self.tz = profile.timezone if profile else DEFAULT_TZ
        self.tracking = self._base_tracking + (profile.tracking_params if profile else ())
        self.strip_index = bool(profile and profile.strip_index_html)
        self.url = (
            canonical_url(self.response.url, tracking=self.tracking, strip_index=self.strip_index) or self.response.url
        )
        self._explain: dict[str, str] = {}
        self._labels, self._label_re, self._label_owner, self._label_only_re = _labels_for(profile)
        # per-page memos: a profile selector's values, a region's entries, a loaded list entry
        self._selected: dict[tuple[str | None, str | None], list[str]] = {}
        self._entries_memo: dict[tuple[etree._Element, ...], list[dict[str, Any]]] = {}
        self._loaded_links: dict[tuple[Any, ...], dict[str, Any]] = {}

    def with_profile(self, profile: Profile | None) -> SnapshotPage:
        """The same page read with ``profile``, sharing what does not depend on the profile.

        For the spider, which reads ``meta`` of a profile-less page to pick the profile: the
        parsed tree, its visible lines, ``<meta>`` and ``<title>`` (whatever this page has
        computed so far), the base URL and the fetch time are reused, not recomputed. The
        returned page is new (this one is left as it is) and behaves exactly like
        ``SnapshotPage(response, profile, fetched_at=..., tracking=...)`` built with this
        page's arguments. Pure: no I/O.
        """
        page = type(self).__new__(type(self))
        page.response = self.response
        page.fetched_at = self.fetched_at
        page._base_tracking = self._base_tracking
        page.base_url = self.base_url
        page._use_profile(profile)
        for name in _PROFILE_FREE:
            if name in self.__dict__:
                page.__dict__[name] = self.__dict__[name]
        return page

    # ------------------------------------------------------------------ parsing basics

    @cached_property
    def selector(self) -> Selector:
        try:
            return self.response.selector
        except ValueError:  # Scrapy's selector resolves <base href>; a malformed one must not lose the page
            return Selector(text=self.response.text, type="html")

    @cached_property
    def root(self) -> etree._Element:
        return self.selector.root

    @cached_property
    def body_el(self) -> etree._Element:
        body = self.root.find(".//body") if self.root is not None else None
        return body if body is not None else self.root

    @cached_property
    def lines(self) -> list[Line]:
        if self.root is None or not isinstance(getattr(self.root, "tag", None), str):
            return []
        return linearize(self.body_el)

    @cached_property
    def meta(self) -> dict[str, str]:
        """``<meta name|property=... content=...>`` of the head, lowercased names."""
        out: dict[str, str] = {}
        if self.root is None:
            return out
        for m in self.root.iter("meta"):
            key = (m.get("name") or m.get("property") or m.get("itemprop") or "").strip().lower()
            if key and key not in out and m.get("content") is not None:
                out[key] = normalize_space(m.get("content"))
        return out

    @cached_property
    def title_tag(self) -> str:
        if self.root is None:
            return ""
        t = self.root.find(".//title")
        return normalize_space(t.text_content() if t is not None else "")

    # ------------------------------------------------------------------ list regions

    @cached_property
    def lists(self) -> dict[str, _ListFound]:
        found: dict[str, _ListFound] = {}
        if self.profile:
            for lname, rule in self.profile.lists.items():
                lf = self._profile_list(lname, rule)
                if lf is not None:
                    found[lname] = lf
        for line in self.lines if len(found) < 2 else ():
            if len(line.text) > 40 or (line.link_density > 0.9 and not line.heading):
                continue
            text = line.text.strip()
            if line.hrefs:  # "更多关于体育的资讯 查看全部 >": the heading without its more-link
                text = V.HEADING_MORE_SUFFIX_RE.sub("", text) or text
            kind: str | None = None
            cat: str | None = None
            if V.RELATED_HEADING_RE.match(text):
                kind = "related"
            else:
                m = V.MORE_HEADING_RE.match(text)
                if m:
                    kind = "more_in_category"
                    cat = next((g for g in (m.group("cat1"), m.group("cat2"), m.group("cat3")) if g), None)
                    if cat and cat.lower() in V.NOT_A_CATEGORY:
                        cat = None
            if kind is None or kind in found:
                continue
            elements = self._region_after(_heading_element(line))
            if not elements:
                continue
            lf = _ListFound(kind, line.index, text, cat, elements=elements)
            lf.entries = self._entries(elements)
            found[kind] = lf
        if "related" not in found:
            unlabeled = self._unlabeled_related(found.get("more_in_category"))
            if unlabeled is not None:
                found["related"] = unlabeled
        return found

    def _snapshot_label_lines(self, before: int | None) -> list[int]:
        """Lines starting with a snapshot-time or original-URL label (a light scan, no list context)."""
        out = []
        for ln in self.lines[:before]:
            m = self._label_re.match(ln.text) or self._label_only_re.match(ln.text)
            if m is None or ln.link_density >= 0.8:
                continue
            label = next(g for g in m.groups() if g)
            if self._label_owner.get(re.sub(r"\s+", " ", label.lower())) in ("captured_at", "original_url"):
                out.append(ln.index)
        return out

    def _unlabeled_related(self, more: _ListFound | None) -> _ListFound | None:
        """A related list with no heading: the first repeated link list after the snapshot block.

        The seed page itself shows one: its related entries follow 信息原文地址 directly.
        """
        snap_lines = self._snapshot_label_lines(before=more.heading_line if more is not None else None)
        if not snap_lines:
            return None
        start = max(snap_lines)
        stop = more.heading_line if more is not None and more.heading_line > start else len(self.lines)
        taken = {el for lf in ([more] if more else []) for el in lf.elements}
        for ln in self.lines[start + 1 : stop]:
            if not ln.hrefs or ln.furniture:
                continue
            container = _repeated_container(ln.owner, self.body_el)
            if container is None or any(is_ancestor(container, el) or is_ancestor(el, container) for el in taken):
                continue
            entries = self._entries([container])
            if len(entries) >= 2:
                lf = _ListFound(
                    "related", -1, "", None, entries=entries, elements=[container], rule="list-after-snapshot-block"
                )
                return lf
            return None
        return None

    def _region_after(self, heading: etree._Element) -> list[etree._Element]:
        """The elements after a list heading, up to the next heading: the list's region."""
        node = heading
        for _ in range(4):
            region: list[etree._Element] = []
            for sib in node.itersiblings():
                if not isinstance(sib.tag, str) or sib.tag in ("script", "style"):
                    continue
                if self._is_section_heading(sib) or (sib.tag == "hr" and region):
                    break  # the next section, or a rule closing this one
                if V.MORE_LINK_RE.match(_own_text(sib)):
                    continue  # a "更多>>" link beside the heading is not the list
                region.append(sib)
            if any(self._has_text(el) for el in region):
                return region
            parent = node.getparent()
            if parent is None or parent is self.body_el:
                break
            node = parent
        return []

    def _is_section_heading(self, el: etree._Element) -> bool:
        if el.tag in HEADING_TAGS:
            return True
        if len(el) == 0 or (len(el) == 1 and el[0].tag in ("span", "strong", "b")):
            text = normalize_space(el.text_content())
            return (
                bool(text)
                and len(text) <= 40
                and bool(V.RELATED_HEADING_RE.match(text) or V.MORE_HEADING_RE.match(text))
            )
        return False

    @staticmethod
    def _has_text(el: etree._Element) -> bool:
        return bool(normalize_space(el.text_content())) or el.find(".//a") is not None

    def _entries(self, region: list[etree._Element]) -> list[dict[str, Any]]:
        """Split a list region into entries, whatever the markup (li, tr pairs, div, dl, or flat).

        Memoised per page: ``dated_links()`` reads again the regions ``lists`` already split.
        """
        key = tuple(region)
        found = self._entries_memo.get(key)
        if found is None:
            found = self._entries_memo[key] = self._split_entries(region)
        return found

    def _split_entries(self, region: list[etree._Element]) -> list[dict[str, Any]]:
        # "加载更多" / "查看更多>>" links and pagers under a list are not entries
        container: list[etree._Element] = [el for el in region if not V.MORE_LINK_RE.match(_own_text(el))]
        # descend through single wrappers (div > ul > li ...)
        while len(container) == 1 and container[0].tag not in ("a", "li", "tr", "dt", "dd"):
            kids = [c for c in container[0] if isinstance(c.tag, str) and self._has_text(c)]
            if not kids:
                break
            container = kids
        # An entry ends where a part it already has comes again: a second title, date or
        # snippet starts the next entry. This reads <li> lists, two-row table entries
        # (title+date row, snippet row), dt/dd groups and flat a/p/span siblings alike.
        groups: list[list[etree._Element]] = []
        current: list[etree._Element] = []
        have: set[str] = set()
        for child in container:
            feats = set(_entry_parts(child))
            if not feats:
                if current:
                    current.append(child)
                continue
            if current and feats & have:
                groups.append(current)
                current, have = [], set()
            current.append(child)
            have |= feats
        if current:
            groups.append(current)
        entries = []
        for g in groups:
            entry = _entry(g)
            if entry is not None:
                entries.append(entry)
        return entries

    def _profile_list(self, lname: str, rule: ListRule) -> _ListFound | None:
        elements = [e for e in _select(self.root, rule.entries, None) if not isinstance(e, str)]
        if not elements:
            return None

        def texts(css: str | None) -> list[str | None]:
            if not css:
                return [None] * len(elements)
            return [_nodes_text(nodes) or None for nodes in _select_in_each(elements, css)]

        columns = [texts(css) for css in (rule.title, rule.url, rule.snippet, rule.date)]
        entries: list[dict[str, Any]] = [
            {"title": title, "url": url, "snippet": snippet, "date": date}
            for title, url, snippet, date in zip(*columns, strict=True)
        ]
        return _ListFound(lname, -1, "", None, entries=entries, elements=elements, rule=f"profile:css:{rule.entries}")

    @cached_property
    def list_line_ids(self) -> set[int]:
        """Indexes of lines that belong to a recognised list (heading included)."""
        ids: set[int] = set()
        regions = [el for lf in self.lists.values() for el in lf.elements]
        for lf in self.lists.values():
            if lf.heading_line >= 0:
                ids.add(lf.heading_line)
        if not regions:
            return ids
        region_set = set(regions)
        for line in self.lines:
            el = line.owner
            while el is not None:
                if el in region_set:
                    ids.add(line.index)
                    break
                el = el.getparent()
        return ids

    # ------------------------------------------------------------------ labels

    @cached_property
    def candidates(self) -> dict[str, list[_Candidate]]:
        """Every labelled value on the page outside link lists, by field, in page order."""
        out: dict[str, list[_Candidate]] = {f: [] for f in self._labels}
        skip = self.list_line_ids
        lines = self.lines
        for i, line in enumerate(lines):
            if i in skip:
                continue
            text = line.text
            m_only = self._label_only_re.match(text)
            if m_only:
                fname = self._label_owner.get(m_only.group("label").lower().replace("\u3000", " "), "")
                fname = fname or self._label_owner.get(re.sub(r"\s+", " ", m_only.group("label").lower()), "")
                if not fname:
                    continue
                nxt = lines[i + 1] if i + 1 < len(lines) and (i + 1) not in skip else None
                # "信息原文地址:" alone in a paragraph shows the field empty; a label in its own cell
                # (td/th/dt, or a label-classed element) has its value in the next element
                if nxt is not None and not _value_in_next_element(line):
                    nxt = None
                if nxt is not None and not self._label_re.match(nxt.text) and not self._label_only_re.match(nxt.text):
                    href = _first_href(nxt.hrefs) if fname == "original_url" else None
                    out[fname].append(_Candidate(fname, m_only.group("label"), nxt.text, i, href))
                else:  # the label with nothing after it: the page shows the field empty
                    out[fname].append(_Candidate(fname, m_only.group("label"), "", i, _first_href(line.hrefs)))
                continue
            matches = list(self._label_re.finditer(text))
            if not matches:
                continue
            first_label = matches[0].group("cjk") or matches[0].group("latin")
            if line.link_chars and len(text.replace(" ", "")) - line.link_chars < len(first_label):
                continue  # the label itself sits inside a link: an entry's excerpt, not page metadata
            if len(text) > 300 and matches[0].start() > 0:
                continue  # a label deep inside a long paragraph is prose, not metadata
            for k, m in enumerate(matches):
                label = m.group("cjk") or m.group("latin")
                fname = self._label_owner.get(re.sub(r"\s+", " ", label.lower()), "")
                if not fname:
                    continue
                prev = text[m.start() - 1] if m.start() else ""
                if prev and (prev in "（(【[“\"'《" or (k == 0 and _CJK_CHAR_RE.match(prev))):
                    continue  # 数据来源：… / （来源：…）: a citation inside prose, not a label
                if label in V.GENERIC and len(text) > 120:
                    continue
                end = matches[k + 1].start() if k + 1 < len(matches) else len(text)
                value = text[m.end() : end].strip(_VALUE_SEPS + " ")
                href = _first_href(line.hrefs) if fname == "original_url" else None
                if (
                    not value
                    and href is None
                    and i + 1 < len(lines)
                    and (i + 1) not in skip
                    and k + 1 == len(matches)
                    and _value_in_next_element(line)
                ):
                    nxt = lines[i + 1]
                    if not self._label_re.search(nxt.text):
                        value = nxt.text
                        href = _first_href(nxt.hrefs) if fname == "original_url" else None
                out[fname].append(_Candidate(fname, label, value, i, href))
        return out

    def _pick(self, fname: str) -> _Candidate | None:
        """The best labelled candidate: specific labels first, then nearest after the title."""
        cands = self.candidates.get(fname) or []
        if not cands:
            return None
        title_line = self.title_line
        best: tuple[tuple[int, int, int], _Candidate] | None = None
        for c in cands:
            if not self._valid_value(fname, c):
                continue
            generic = 1 if c.label in V.GENERIC or c.label.title() in V.GENERIC else 0
            before_title = 1 if title_line is not None and c.line < title_line else 0
            key = (generic, before_title, c.line)
            if best is None or key < best[0]:
                best = (key, c)
        return best[1] if best else None

    def _valid_value(self, fname: str, c: _Candidate) -> bool:
        v = c.value
        if fname in ("published_at", "captured_at"):
            return parse_datetime(v, tz=self.tz, reference=self.fetched_at) is not None
        if fname == "original_url":
            return True
        if fname in _SHORT_FIELDS:
            limit = _SHORT_FIELDS[fname] * (2 if v.isascii() else 1)
            return 0 < len(self._short_value(fname, v)) <= limit
        return bool(v)

    def _short_value(self, fname: str, value: str) -> str:
        """Cut a short field's value at an unlabelled date or, for CJK values, a space."""
        m = _ANY_DATE_RE.search(value)
        if m and m.start() > 0:
            value = value[: m.start()]
        value = value.strip(_VALUE_SEPS)
        if value and not value[0].isascii() and " " in value:
            value = value.split(" ", 1)[0]
        return value

    # ------------------------------------------------------------------ snapshot block

    @cached_property
    def snapshot_text(self) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """(disclaimer sentences, notice sentences), each with its line index."""
        disclaimer: list[tuple[int, str]] = []
        notice: list[tuple[int, str]] = []
        skip = self.list_line_ids
        snap_lines = {c.line for f in ("captured_at", "original_url") for c in self.candidates.get(f, [])}
        for line in self.lines:
            if line.index in skip or len(line.text) > 600:
                continue
            text = line.text
            is_disc = _is_disclaimer(text)
            is_notice = bool(V.NOTICE_RE.search(text))
            if not is_disc and not is_notice:
                continue
            near = any(abs(line.index - j) <= 4 for j in snap_lines) or any(
                abs(line.index - j) <= 4 for j, _ in disclaimer
            )
            if not is_disc and line.furniture and not near:
                continue  # a site-wide footer notice far from the snapshot block
            if not is_disc and len(text) > 200:
                continue  # a long paragraph that mentions removal is prose, not the notice
            for sentence in _sentences(text):
                if self._label_re.match(sentence) and not _is_disclaimer(sentence):
                    continue  # 快照生成时间:... inside the same line
                if _is_disclaimer(sentence):
                    disclaimer.append((line.index, sentence))
                elif V.NOTICE_RE.search(sentence) and (
                    near or is_disc or "快照" in sentence or "snapshot" in sentence.lower()
                ):
                    notice.append((line.index, sentence))
                elif disclaimer and disclaimer[-1][0] in (line.index, line.index - 1) and not notice:
                    disclaimer.append((line.index, sentence))  # continuation of the disclaimer
        return disclaimer, notice

    # ------------------------------------------------------------------ title

    @cached_property
    def title_info(self) -> tuple[str | None, int | None, str]:
        rule = self._profile_field("title")
        if rule is not None:
            return rule[0], None, rule[1]
        lines = self.lines
        meta_lines = sorted(
            c.line
            for f in ("category", "published_at", "source")
            for c in self.candidates.get(f, [])
            if c.line not in self.list_line_ids
        )
        page_titles = [t for t in (self.meta.get("og:title"), self.title_tag) if t]
        # 1. a heading (or title-classed line) just above the first metadata line
        if meta_lines:
            first_meta = meta_lines[0]
            for j in range(first_meta - 1, max(-1, first_meta - 5), -1):
                ln = lines[j]
                if j in self.list_line_ids or ln.link_density > 0.6 or not (4 <= len(ln.text) <= 150):
                    continue
                if ln.heading or _title_class(ln.owner) or ln.bold:
                    return ln.text, j, f"heading:{ln.tag} above metadata"
                if any(ln.text in t for t in page_titles):
                    return ln.text, j, "line above metadata matching <title>"
        # 2. the first h1/h2 that the <title> or og:title contains
        for level in (1, 2, 3):
            for ln in lines:
                if (
                    ln.heading == level
                    and 4 <= len(ln.text) <= 150
                    and ln.index not in self.list_line_ids
                    and (level == 1 or any(ln.text in t or t in ln.text for t in page_titles))
                ):
                    return ln.text, ln.index, f"heading:h{level}"
        # 3. og:title / <title> without the site-name suffix
        for key, t in (("meta:og:title", self.meta.get("og:title")), ("title-tag", self.title_tag)):
            if t:
                title = strip_site_suffix(t)
                line = next((ln.index for ln in lines if ln.text == title), None)
                return title, line, key
        return None, None, "none"

    @property
    def title_line(self) -> int | None:
        return self.title_info[1]

    # ------------------------------------------------------------------ body

    @cached_property
    def body_info(self) -> tuple[list[str], str]:
        rule = self._profile_field("body", multi=True)
        if rule is not None:
            return rule[0].split("\n\n"), rule[1]
        if self.profile and "body" in self.profile.fields and not self.profile.fields["body"].fallback:
            return [], f"profile:{self.profile.name}:no match (fallback off)"
        lines = self.lines
        skip = set(self.list_line_ids)
        for cands in self.candidates.values():
            for c in cands:
                skip.add(c.line)
                if not c.value or c.value == lines[c.line].text:
                    continue
        # label-only lines and the value lines they point to
        for i, ln in enumerate(lines):
            if self._label_only_re.match(ln.text):
                skip.add(i)
                skip.add(i + 1)
        disc, notice = self.snapshot_text
        snapshot_lines = {i for i, _ in disc} | {i for i, _ in notice}
        snapshot_lines |= {c.line for f in ("captured_at", "original_url") for c in self.candidates.get(f, [])}
        skip |= snapshot_lines
        title_line = self.title_line
        start = title_line if title_line is not None else -1
        after = [i for i in snapshot_lines | {lf.heading_line for lf in self.lists.values()} if i > start]
        end = min(after) if after else len(lines)
        kept: list[Line] = []
        for ln in lines[start + 1 : end]:
            if ln.index in skip or ln.furniture:
                continue
            if ln.link_density > 0.5 and len(ln.text) < 200:
                continue
            if V.FURNITURE_LINE_RE.match(ln.text) or _DATE_ONLY_RE.match(ln.text) or _is_caption(ln):
                continue
            kept.append(ln)
        if not kept:
            return self._trafilatura_body()
        container = _best_container(kept)
        body = [ln.text for ln in kept if container is None or is_ancestor(container, ln.owner)]
        if sum(len(p) for p in body) < 20:
            fallback, how = self._trafilatura_body()
            if sum(len(p) for p in fallback) > sum(len(p) for p in body):
                return fallback, how
        where = container.tag if container is not None else "page"
        cls = (container.get("class") or "").split()[0] if container is not None and container.get("class") else ""
        return body, f"text-density:{where}{'.' + cls if cls else ''}"

    def _trafilatura_body(self) -> tuple[list[str], str]:
        """Body by trafilatura, trusted for the main text only (never metadata: it misreads
        Chinese labels and keeps snapshot disclaimers); used when structure finds no body."""
        try:
            import trafilatura
        except ImportError:  # pragma: no cover - a declared dependency
            return [], "none"
        text = trafilatura.extract(
            self.response.text, include_comments=False, include_tables=False, favor_precision=True, deduplicate=False
        )
        if not text:
            return [], "none"
        drop = {t for _, t in self.snapshot_text[0]} | {t for _, t in self.snapshot_text[1]}
        # text of the page's link lists, furniture and headings is never body, whatever trafilatura
        # thinks: on a page whose body is missing (built by JavaScript) it would return a list
        not_body = {
            ln.text for ln in self.lines if ln.index in self.list_line_ids or ln.furniture or ln.link_density > 0.5
        }
        paras = []
        for p in (normalize_space(x) for x in text.split("\n")):
            if not p or p in drop or self._label_re.match(p) or p == self.title_info[0]:
                continue
            if p in not_body or any(p in t or t in p for t in not_body if len(t) > 20):
                continue
            paras.append(p)
        return paras, "trafilatura"

    # ------------------------------------------------------------------ profile fields

    def _field_label_at_start(self, text: str) -> bool:
        m = self._label_re.match(text)
        if m is None:
            return False
        label = m.group("cjk") or m.group("latin")
        return bool(self._label_owner.get(re.sub(r"\s+", " ", label.lower())))

    def _selected_texts(self, css: str | None, xpath: str | None) -> list[str]:
        """Non-empty visible texts a profile selector picks on the page, computed once per page
        (several fields often share one selector: ``div.info`` for category, date and source)."""
        key = (css, xpath)
        found = self._selected.get(key)
        if found is None:
            found = [t for t in (_node_text(n) for n in _select(self.root, css, xpath)) if t]
            self._selected[key] = found
        return list(found)

    def _profile_field(self, fname: str, multi: bool = False) -> tuple[str, str] | None:
        if not self.profile or fname not in self.profile.fields:
            return None
        rule: FieldRule = self.profile.fields[fname]
        # a selector may pick text/attributes (::text, @href) or whole elements: read an element's
        # visible text, never its HTML
        values = self._selected_texts(rule.css, rule.xpath)
        if multi:  # body paragraphs: a metadata line picked by a broad selector is still metadata
            values = [v for v in values if not self._field_label_at_start(v)]
        if not values:
            self._explain[f"_miss_{fname}"] = rule.describe()
            return None
        value = "\n\n".join(values) if multi else rule.join.join(values)
        if rule.regex is not None:
            m = rule.regex.search(value)
            if not m:
                self._explain[f"_miss_{fname}"] = rule.describe()
                return None
            value = m.group(1) if m.groups() else m.group(0)
        return value, f"profile:{self.profile.name}:{rule.describe()}"

    # ------------------------------------------------------------------ kind

    @cached_property
    def kind(self) -> str:
        if self.root is None or not (self.body_el.text_content() or "").strip():
            return EMPTY  # nothing visible at all (an empty or markup-only body)
        # a profile's URL rules decide when they match; a URL matching neither is classified generically
        if self.profile and self.profile.article_url is not None and self.profile.article_url.search(self.url):
            return ARTICLE
        if self.profile and self.profile.listing_url is not None and self.profile.listing_url.search(self.url):
            return LISTING
        disc, _ = self.snapshot_text
        has_snapshot = bool(disc) or bool(self._pick("captured_at"))
        has_meta = any(self._pick(f) for f in ("published_at", "source"))
        body, _ = self.body_info
        body_len = sum(len(p) for p in body)
        title = self.title_info[0]
        if not title or body_len == 0:
            return LISTING
        # listing pages often label every entry ("来源:… 2024-…"): many distinct values = a list
        distinct_sources = {c.value for c in self.candidates.get("source", [])}
        distinct_dates = {c.value for c in self.candidates.get("published_at", [])}
        has_capture_label = bool(self._pick("captured_at"))
        if not has_capture_label and (len(distinct_sources) >= 3 or len(distinct_dates) >= 3):
            return LISTING  # even if a site-wide footer speaks of snapshots
        if has_snapshot:
            return ARTICLE
        if has_meta and body_len >= 40:
            return ARTICLE
        return LISTING

    # ------------------------------------------------------------------ item

    def field_value(self, fname: str) -> tuple[str | None, str | None, str]:
        """(value, href, rule) of a labelled field: profile selector first, then labels."""
        prof = self._profile_field(fname)
        if prof is not None:
            return prof[0], None, prof[1]
        if self.profile and fname in self.profile.fields and not self.profile.fields[fname].fallback:
            return None, None, f"profile:{self.profile.name}:no match (fallback off)"
        c = self._pick(fname)
        if c is None:
            return None, None, "none"
        value = self._short_value(fname, c.value) if fname in _SHORT_FIELDS else c.value
        return value, c.href, f"label:{c.label}"

    def result(self) -> PageResult:
        """Classify the page and, for an article, build its records.

        Never raises: whatever a hostile or broken page does to the parser, the crawl gets an
        ``unparseable`` result naming the error, which the spider counts and reports. The broad
        ``except`` is deliberate: one page must not stop a crawl, and nothing is lost silently.
        """
        try:
            kind = self.kind
            if kind != ARTICLE:
                return PageResult(kind, self.url)
            article = self.to_item()
            return PageResult(ARTICLE, self.url, article, self.link_items(article), self.explain())
        except Exception as exc:  # deliberately broad: see docstring
            where = exc.__traceback__
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            at = f" at {where.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{where.tb_lineno}" if where else ""
            return PageResult(UNPARSEABLE, self.url, problems=[f"{type(exc).__name__}: {exc}{at}"])

    def to_item(self) -> ArticleItem:
        """The article record, loaded through the item loaders (normalisation happens there)."""
        ex = self._explain
        captured_raw, _, how = self.field_value("captured_at")
        ex["snapshot.captured_at"] = how
        captured = parse_datetime(captured_raw, tz=self.tz, reference=self.fetched_at) if captured_raw else None
        ctx = {"tz": self.tz, "base_url": self.base_url, "tracking": self.tracking, "strip_index": self.strip_index}
        reference = captured or self.fetched_at

        snap = FastLoader(SnapshotLoader, **ctx, reference=self.fetched_at)
        if captured_raw:
            snap.add_value("captured_at", captured_raw)
            snap.add_value("captured_at_raw", captured_raw)
        orig_value, orig_href, how = self.field_value("original_url")
        ex["snapshot.original_url"] = how
        snap.add_value("original_url", orig_href or orig_value)
        prof_disc = self._profile_field("disclaimer", multi=False)
        if prof_disc:
            snap.add_value("disclaimer", prof_disc[0])
            ex["snapshot.disclaimer"] = prof_disc[1]
        else:
            disc = self.snapshot_text[0]
            snap.add_value("disclaimer", _join_sentences([t for _, t in disc]))
            ex["snapshot.disclaimer"] = "disclaimer-sentence" if disc else "none"
        prof_notice = self._profile_field("notice")
        if prof_notice:
            snap.add_value("notice", prof_notice[0])
            ex["snapshot.notice"] = prof_notice[1]
        else:
            notice = self.snapshot_text[1]
            snap.add_value("notice", _join_sentences([t for _, t in notice]))
            ex["snapshot.notice"] = "notice-sentence" if notice else "none"
        prof_coll = self._profile_field("collector")
        disclaimer_text = snap.get_output_value("disclaimer")
        if prof_coll:
            snap.add_value("collector", collector_host(prof_coll[0]) or prof_coll[0])
            ex["snapshot.collector"] = prof_coll[1]
        else:
            snap.add_value("collector", collector_host(disclaimer_text))
            ex["snapshot.collector"] = "host-in-disclaimer" if snap.get_output_value("collector") else "none"

        loader = FastLoader(ArticleLoader, **ctx, reference=reference)
        loader.add_value("url", self.url)
        title, _, how = self.title_info
        loader.add_value("title", title)
        ex["title"] = how
        for fname in ("category", "source", "reposted_from"):
            value, _, how = self.field_value(fname)
            loader.add_value(fname, value)
            ex[fname] = how
        if not loader.get_output_value("category"):
            cat, how = self._category_fallback()
            loader.add_value("category", cat)
            ex["category"] = how
        pub_raw, _, how = self.field_value("published_at")
        if pub_raw is None:
            pub_raw, how = self._published_fallback()
        loader.add_value("published_at", pub_raw)
        loader.add_value("published_at_raw", _date_part(pub_raw))
        ex["published_at"] = how
        body, how = self.body_info
        loader.add_value("body", body)
        ex["body"] = how
        body_text = "\n\n".join(body)
        loader.add_value("language", detect_language(body_text or title or ""))
        ex["language"] = "script-count"
        item: ArticleItem = loader.load_item()
        item.snapshot = asdict(snap.load_item())
        item.body = item.body or ""
        item.title = item.title or ""
        item.id = record_id(item.url or self.url)
        item.fetched_at = self.fetched_at.astimezone(timezone.utc).isoformat()
        item.profile = self.profile.name if self.profile else None
        # one reference for both lists: relative and year-less dates read against the snapshot
        # time when the page shows one, else the fetch time
        for lname, ref in (("related", reference), ("more_in_category", reference)):
            lf = self.lists.get(lname)
            entries = [self._link_entry(e, ref, ctx) for e in lf.entries] if lf else []
            setattr(item, lname, entries)
            ex[lname] = (f"{lf.rule}:{lf.heading_text}" if lf.heading_text else lf.rule) if lf else "none"
        return item

    def _link_entry(self, e: dict[str, Any], reference: datetime, ctx: dict[str, Any]) -> dict[str, Any]:
        """One list entry normalised (a copy: memoised per page, as ``dated_links()`` loads the
        article's list entries again)."""
        key = (e.get("title"), e.get("url"), e.get("snippet"), e.get("date"), reference)
        found = self._loaded_links.get(key)
        if found is None:
            found = load_link_entry(
                {
                    "title": e.get("title"),
                    "url": e.get("url"),
                    "snippet": e.get("snippet"),
                    "published_at": e.get("date"),
                    "published_at_raw": e.get("date"),
                },
                {**ctx, "reference": reference},
            )
            self._loaded_links[key] = found
        return dict(found)

    def _category_fallback(self) -> tuple[str | None, str]:
        more = self.lists.get("more_in_category")
        if more and more.category:
            return more.category, f"more-heading:{more.heading_text}"
        title = self.title_info[0]
        for ln in self.lines[: (self.title_line or 40) + 1]:
            parts = [p for p in V.BREADCRUMB_SEP_RE.split(ln.text) if p]
            if len(parts) >= 2 and (V.BREADCRUMB_HOME_RE.match(parts[0]) or (ln.furniture and len(ln.hrefs) >= 2)):
                parts = [p for p in parts[1:] if p.lower() not in V.BREADCRUMB_LEAF and p != title]
                if parts and len(parts[-1]) <= 20:
                    return parts[-1], "breadcrumb"
        for el in self.body_el.iter("a", "li"):
            cls = (el.get("class") or "") + " " + (el.get("aria-current") or "")
            if re.search(r"(?:^|\s)(?:active|current|on|cur|selected|page)(?:\s|$)", cls):
                text = normalize_space(el.text_content())
                if text and len(text) <= 12 and not V.BREADCRUMB_HOME_RE.match(text):
                    return text, "active-nav"
        return None, "none"

    def _published_fallback(self) -> tuple[str | None, str]:
        for key in (
            "article:published_time",
            "og:published_time",
            "pubdate",
            "publishdate",
            "publish_date",
            "datepublished",
            "date",
            "dc.date",
        ):
            if self.meta.get(key):
                return self.meta[key], f"meta:{key}"
        t = self.body_el.find(".//time") if self.body_el is not None else None
        if t is not None and (t.get("datetime") or normalize_space(t.text_content())):
            return t.get("datetime") or normalize_space(t.text_content()), "time-element"
        if self.title_line is not None:
            for ln in self.lines[self.title_line + 1 : self.title_line + 4]:
                m = _ANY_DATE_RE.search(ln.text)
                if m and len(ln.text) <= 120:
                    return m.group(0), "date-near-title"
        return None, "none"

    def dated_links(self) -> dict[str, str]:
        """Canonical URL -> ISO date shown beside the link, for links in the page's lists.

        Covers recognised lists and any other repeated list of dated entries (a listing
        page's index), so the spider can fetch the newest articles first.
        """
        ctx = {"tz": self.tz, "base_url": self.base_url, "tracking": self.tracking, "strip_index": self.strip_index}
        reference = self.fetched_at
        out: dict[str, str] = {}
        seen: set[etree._Element] = set()
        containers: list[etree._Element] = [el for lf in self.lists.values() for el in lf.elements]
        for ln in self.lines:
            if ln.hrefs and ln.owner is not None:
                c = _repeated_container(ln.owner, self.body_el)
                if c is not None and c not in seen:
                    seen.add(c)
                    containers.append(c)
        for c in containers:
            for e in self._entries([c]):
                if not e.get("url") or not e.get("date"):
                    continue
                entry = self._link_entry(e, reference, ctx)
                if entry["url"] and entry["published_at"]:
                    out.setdefault(entry["url"], entry["published_at"])
        return out

    def link_items(self, article: ArticleItem) -> list[LinkItem]:
        """One link record per list entry, in page order (the links export)."""
        out: list[LinkItem] = []
        for lname in ("related", "more_in_category"):
            for pos, entry in enumerate(getattr(article, lname)):
                out.append(LinkItem(from_url=article.url, list=lname, position=pos, **entry))
        return out

    def explain(self) -> dict[str, str]:
        if not self._explain:
            self.to_item()
        return {k: v for k, v in self._explain.items() if not k.startswith("_")} | {
            f"profile_miss.{k[6:]}": v for k, v in self._explain.items() if k.startswith("_miss_")
        }


# ---------------------------------------------------------------------- helpers

#: Names of the cached properties that do not depend on the profile (shared by ``with_profile``).
_PROFILE_FREE = ("selector", "root", "body_el", "lines", "meta", "title_tag")

_Labels = tuple[dict[str, tuple[str, ...]], re.Pattern[str], dict[str, str], re.Pattern[str]]
#: id(profile) -> (profile, its labels): the profile is kept so its id cannot be reused while cached
_PROFILE_LABELS: dict[int, tuple[Profile | None, _Labels]] = {}


def _labels_for(profile: Profile | None) -> _Labels:
    """(labels by field, label regex, label -> field, label-only regex) of a profile, built once
    per profile: compiling them per page cost more than some pages' whole extraction."""
    hit = _PROFILE_LABELS.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    labels: dict[str, tuple[str, ...]] = dict(V.FIELD_LABELS)
    if profile:
        for fname, extra in profile.labels.items():
            if fname in labels:
                labels[fname] = tuple(extra) + labels[fname]
    label_re, owner, label_only_re = _compiled_labels(tuple(sorted(labels.items())))
    if len(_PROFILE_LABELS) >= 256:  # profiles are few; a caller making them per page must not grow this
        _PROFILE_LABELS.clear()
    found: _Labels = (labels, label_re, owner, label_only_re)
    _PROFILE_LABELS[id(profile)] = (profile, found)
    return found


@lru_cache(maxsize=64)
def _compiled_labels(
    items: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[re.Pattern[str], dict[str, str], re.Pattern[str]]:
    """The label regex, label -> field map and label-only regex of one label set."""
    labels = dict(items)
    label_re, owner = V.compile_labels(labels)
    return label_re, owner, V.compile_label_only(labels)


def _anchors(el: etree._Element) -> list[etree._Element]:
    return [el] if el.tag == "a" else list(el.iter("a"))


def _first_href(hrefs: list[str]) -> str | None:
    for h in hrefs:
        h = h.strip()
        if h and not h.lower().startswith(("javascript:", "#", "mailto:")):
            return h
    return None


def _is_snippet_like(text: str) -> bool:
    t = text.strip()
    if t.startswith(("...", "…", "。。。")):
        return True
    return len(t) > (160 if t.isascii() else 48)


def _is_disclaimer(text: str) -> bool:
    if V.DISCLAIMER_ZH_A.search(text) and V.DISCLAIMER_ZH_B.search(text):
        return True
    return bool(V.DISCLAIMER_EN_A.search(text) and V.DISCLAIMER_EN_B.search(text))


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT_RE.split(text) if s and s.strip()]


def _title_class(el: etree._Element | None) -> bool:
    return el is not None and bool(V.TITLE_CLASS_RE.search((el.get("class") or "") + " " + (el.get("id") or "")))


def _date_part(raw: str | None) -> str | None:
    """The date as shown, without trailing label debris (``2024-09-24 15:46 来源`` → date part)."""
    if raw is None:
        return None
    m = _ANY_DATE_RE.search(raw)
    if m and m.start() == 0:
        rest = raw[m.end() :]
        tz = re.match(r"\s*(?:UTC|GMT|Z|[+-]\d{2}:?\d{2}|\(?北京时间\)?)", rest)
        return (m.group(0) + (tz.group(0) if tz else "")).strip()
    return raw.strip()


def _best_container(lines: list[Line]) -> etree._Element | None:
    """The element holding most body text: each line scores its owner, parent and (half) grandparent."""
    scores: dict[etree._Element, float] = {}
    depth: dict[etree._Element, int] = {}
    for ln in lines:
        weight = float(len(ln.text))
        el = ln.owner
        for factor in (1.0, 1.0, 0.5):
            if el is None:
                break
            scores[el] = scores.get(el, 0.0) + weight * factor
            if el not in depth:
                depth[el] = sum(1 for _ in el.iterancestors())
            el = el.getparent()
    if not scores:
        return None
    return max(scores, key=lambda e: (scores[e], depth[e]))


# ---------------------------------------------------------------------- list entries

_TOKEN_SNIPPET = frozenset({"s", "zy", "jj", "des", "txt", "text", "sum", "abs", "intro", "p"})
_TOKEN_TITLE = frozenset({"t", "tt", "tit", "title", "bt", "headline", "name", "hd"})
_BLOCKISH = frozenset(("p", "div", "li", "td", "dd", "section", "article", "ul", "ol", "table"))


_CLASS_SPLIT_RE = re.compile(r"[\s_-]+")
_RANK_RE = re.compile(r"\d{1,3}[.、]?")


def _classes(el: etree._Element) -> set[str]:
    """Class tokens, also split on - and _ (``card-t`` / ``card-s`` name a title / snippet slot)."""
    raw = (el.get("class") or "").lower()
    if not raw:
        return set()
    return set(raw.split()) | set(_CLASS_SPLIT_RE.split(raw)) - {""}


def _is_snippet_el(el: etree._Element) -> bool:
    cls = _classes(el)
    return bool(cls & _TOKEN_SNIPPET) or bool(V.SNIPPET_CLASS_RE.search(" ".join(cls)))


def _is_title_el(el: etree._Element) -> bool:
    if el.tag in HEADING_TAGS:
        return True
    cls = _classes(el)
    return bool(cls & _TOKEN_TITLE) or bool(V.TITLE_CLASS_RE.search(" ".join(cls)))


_BULLETS = "·•●○◆◇■□▪▫►▶➤*-–—|｜> "


def _own_text(el: etree._Element) -> str:
    """Normalised text content; a childless element's is its ``.text`` (``text_content()`` runs
    an XPath per call, and this runs on every element of every list entry)."""
    if not isinstance(el.tag, str):
        return ""
    return normalize_space(el.text if len(el) == 0 else el.text_content())


def _title_text(el: etree._Element) -> str:
    """A title element's text without list bullets (``·标题``, ``• Title``)."""
    return _own_text(el).lstrip(_BULLETS).strip()


def _rank_els(els: list[etree._Element]) -> set[etree._Element]:
    """Rank badges of numbered lists (``<span class="num">3</span>``): not title, not snippet."""
    out = set()
    for el in els:
        for d in el.iter():
            if isinstance(d.tag, str) and len(d) == 0 and _RANK_RE.fullmatch(_own_text(d)):
                out.add(d)
    return out


def _date_el(els: list[etree._Element]) -> etree._Element | None:
    """The last element of the entry whose whole text is a date."""
    found = None
    for el in els:
        for d in el.iter():
            if not isinstance(d.tag, str) or d.tag in ("script", "style"):
                continue
            t = _own_text(d)
            if t and len(t) <= 40 and _DATE_ONLY_RE.match(t):
                found = d
    return found


def _title_el(els: list[etree._Element], date_el: etree._Element | None) -> tuple[etree._Element | None, bool]:
    """(title element, explicitly empty): a heading / title-classed element, else a headline anchor.

    An empty title-classed element (``<td class="t"></td>``) says the entry has no title.
    """
    empty_title_slot = False
    for el in els:
        for d in el.iter():
            if not isinstance(d.tag, str) or d is date_el:
                continue
            if _is_title_el(d):
                t = _title_text(d)
                if t and not _DATE_ONLY_RE.match(t):
                    return d, False
                if not t and d.find(".//img") is None:
                    empty_title_slot = True
    if empty_title_slot:
        return None, True
    for el in els:
        for a in _anchors(el):
            t = _own_text(a)
            if not t or _DATE_ONLY_RE.match(t) or _is_snippet_like(t):
                continue
            if any(isinstance(x.tag, str) and x.tag in _BLOCKISH for x in a.iterdescendants()):
                continue  # an anchor wrapping a paragraph links an excerpt, not a headline
            if _is_snippet_el(a) or any(_is_snippet_el(x) or x.tag == "p" for x in _ancestors_within(a, els)):
                continue
            return a, False
    return None, False


def _ancestors_within(el: etree._Element, roots: list[etree._Element]) -> list[etree._Element]:
    """Ancestors of ``el`` strictly inside the entry (the entry's own root elements excluded)."""
    out = []
    node = el.getparent()
    root_set = set(roots)
    while node is not None and node not in root_set:
        out.append(node)
        node = node.getparent()
    return out


def _text_without(els: list[etree._Element], exclude: set[etree._Element]) -> str:
    """Visible text of the entry leaving out whole subtrees (its title and date)."""
    parts: list[str] = []

    def walk(el: etree._Element) -> None:
        if not isinstance(el.tag, str) or el.tag in ("script", "style") or el in exclude:
            return
        block = el.tag in _BLOCKISH
        if block:
            parts.append(" ")
        if el.text:
            parts.append(el.text)
        for child in el:
            walk(child)
            if child.tail:
                parts.append(child.tail)
        if block:
            parts.append(" ")

    for el in els:
        walk(el)
    return normalize_space("".join(parts))


def _entry_parts(el: etree._Element) -> list[str]:
    """Which parts of a list entry this element carries: title, date, snippet."""
    if not isinstance(el.tag, str):
        return []
    date = _date_el([el])
    title, empty_slot = _title_el([el], date)
    parts = []
    if title is not None or empty_slot:
        parts.append("title")
    if date is not None:
        parts.append("date")
    exclude = {x for x in (date, title) if x is not None}
    if _text_without([el], exclude):
        parts.append("snippet")
    if not parts and any(a.get("href") for a in _anchors(el)):
        parts.append("title")  # an empty link: an entry without visible title
    return parts


def _entry(els: list[etree._Element]) -> dict[str, Any] | None:
    """Title (or None), url, snippet and date of one entry."""
    date_el = _date_el(els)
    title_el, _ = _title_el(els, date_el)
    title = (_title_text(title_el) or None) if title_el is not None else None
    date_raw = _own_text(date_el).strip("[]()（）【】 ") if date_el is not None else None
    # snippets stay as shown (a trailing "," of a cut excerpt included); only separators go
    ranks = _rank_els(els)
    snippet = _text_without(els, {x for x in (title_el, date_el) if x is not None} | ranks).strip(_SNIPPET_TRIM) or None
    if title is None and title_el is None and not _empty_title_slot(els, date_el):
        # a title shown as plain text on the entry's first line (no link, no markup): "标题<br>摘要"
        date_text = _own_text(date_el) if date_el is not None else ""
        lines = [ln.text.replace(date_text, "").strip() if date_text else ln.text for el in els for ln in linearize(el)]
        lines = [t for t in lines if t and not _DATE_ONLY_RE.match(t) and not V.ENTRY_WIDGET_LINE_RE.match(t)]
        if (
            len(lines) >= 2
            and not _is_snippet_like(lines[0])
            and len(lines[0]) <= 60
            and len(re.findall(r"\w", lines[0])) >= 4
        ):
            title = lines[0]
            snippet = _text_without(els, {x for x in (date_el,) if x is not None}).strip(_SNIPPET_TRIM)
            snippet = snippet[len(title) :].strip(_SNIPPET_TRIM) if snippet.startswith(title) else snippet
            snippet = snippet or None
    if snippet:
        snippet = V.ENTRY_WIDGET_TAIL_RE.sub("", snippet).strip(_SNIPPET_TRIM) or None
    if title is not None and snippet is None and _is_snippet_like(title):
        title, snippet = None, title
    if date_raw is None and snippet:
        m = _TRAILING_DATE_RE.search(snippet) or _LEADING_DATE_RE.match(snippet)
        if m:
            date_raw = m.group(1)
            snippet = (snippet[: m.start()] + snippet[m.end() :]).strip(_SNIPPET_TRIM) or None
    url = None
    if title_el is not None:
        a = title_el if title_el.tag == "a" else next(iter(_anchors(title_el)), None)
        if a is None:
            a = next(title_el.iterancestors("a"), None)
        if a is not None:
            url = a.get("href")
    if url is None:
        url = next((a.get("href") for el in els for a in _anchors(el) if a.get("href")), None)
        if url is None:
            url = next((a.get("href") for el in els for a in el.iterancestors("a") if a.get("href")), None)
    if title is None and snippet is None and url is None:
        return None
    return {"title": title, "url": url, "snippet": snippet, "date": date_raw}


def _repeated_container(el: etree._Element | None, stop: etree._Element) -> etree._Element | None:
    """The nearest ancestor holding two or more same-tag children that each carry a link."""
    node = el
    while node is not None and node is not stop:
        kids = [c for c in node if (isinstance(c.tag, str) and c.find(".//a") is not None) or c.tag == "a"]
        tags = [c.tag for c in kids]
        if len(kids) >= 2 and max(tags.count(t) for t in set(tags)) >= 2:
            return node
        node = node.getparent()
    return None


def _join_sentences(sentences: list[str]) -> str | None:
    """Sentences back into the text they came from: no space after CJK punctuation, one after Latin."""
    out = ""
    for sentence in sentences:
        if out and not out.endswith(("。", "！", "？", "；", "，", ",")):
            out += " "
        out += sentence
    return out or None


_CSS_TRANSLATOR = HTMLTranslator()


@lru_cache(maxsize=1024)
def _compiled(css: str | None, xpath: str | None) -> etree.XPath:
    """A profile selector compiled once (parsel's per-call Selector objects cost ~20 µs each)."""
    return etree.XPath(xpath if xpath is not None else _CSS_TRANSLATOR.css_to_xpath(css or ""))


def _select(node: etree._Element | None, css: str | None, xpath: str | None) -> list[Any]:
    if node is None:
        return []
    result = _compiled(css, xpath)(node)
    return result if isinstance(result, list) else [result]


def _select_in_each(elements: list[etree._Element], css: str) -> list[list[Any]]:
    """``[_select(el, css, None) for el in elements]``, with one evaluation where that is the same.

    A list's fields are picked inside each of its entries; running a selector per entry cost
    most of a profiled page. A selector that is one step (``descendant-or-self::a[...]``, then
    perhaps ``/text()`` or ``/@href``) matches a node whatever node it starts from (XPath
    predicates never see the starting node), so it runs once from the entries' nearest common
    ancestor and each match goes to every entry it lies in, in document order, as before.
    """
    if len(elements) < 2 or not _one_step(css):
        return [_select(el, css, None) for el in elements]
    scope = _common_ancestor(elements)
    found = _compiled(css, None)(scope)
    if not isinstance(found, list):
        return [_select(el, css, None) for el in elements]
    index = {el: i for i, el in enumerate(elements)}
    out: list[list[Any]] = [[] for _ in elements]
    for node in found:
        if isinstance(node, str):
            parent = getattr(node, "getparent", lambda: None)()
            if parent is not None and getattr(node, "is_tail", False):
                parent = parent.getparent()  # a tail text node belongs to the element's parent
            if parent is None:
                return [_select(el, css, None) for el in elements]
        else:
            parent = node
        while parent is not None:
            i = index.get(parent)
            if i is not None:
                out[i].append(node)
            if parent is scope:
                break
            parent = parent.getparent()
    return out


def _common_ancestor(elements: list[etree._Element]) -> etree._Element:
    """The deepest element holding all of ``elements`` (each element counts as holding itself)."""
    first = elements[0]
    parent = first.getparent()
    if parent is not None and all(el.getparent() is parent for el in elements):
        return parent  # the usual case: siblings
    chain = [first, *first.iterancestors()]
    for el in elements[1:]:
        mine = {el, *el.iterancestors()}
        while chain[0] not in mine:
            chain.pop(0)
    return chain[0]


_ONE_STEP_TAIL_RE = re.compile(r"text\(\)|@[\w:.-]+|@\*")


@lru_cache(maxsize=256)
def _one_step(css: str) -> bool:
    """Whether the CSS selector compiles to one ``descendant-or-self::`` step, plus perhaps
    ``/text()`` or ``/@attr``: no combinator, no union (see :func:`_select_in_each`)."""
    path = _compiled(css, None).path
    if not path.startswith("descendant-or-self::"):
        return False
    steps: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(path):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif depth == 0 and ch == "|":
            return False
        elif depth == 0 and ch == "/":
            steps.append(path[start:i])
            start = i + 1
    steps.append(path[start:])
    if depth != 0 or quote:
        return False
    return len(steps) == 1 or (len(steps) == 2 and bool(_ONE_STEP_TAIL_RE.fullmatch(steps[1])))


def _nodes_text(nodes: list[Any]) -> str:
    """The selected nodes' visible texts joined by a space, normalised."""
    if len(nodes) == 1:
        return _node_text(nodes[0])  # already normalised
    return normalize_space(" ".join(_node_text(n) for n in nodes))


def _node_text(node: Any) -> str:
    return normalize_space(str(node)) if isinstance(node, str) else element_text(node)


_LABEL_CELL_TAGS = frozenset(("td", "th", "dt", "label"))
_LABEL_CLASS_RE = re.compile(r"label|key|name|tit|hd|lbl|field", re.I)


def _value_in_next_element(line: Line) -> bool:
    """Whether a label with nothing after it has its value in the next element (a table cell,
    a dd, a value span) rather than showing the field empty."""
    owner = line.owner
    if owner is None:
        return False
    if owner.tag in _LABEL_CELL_TAGS:
        return True
    # <div><span class="label">来源</span></div><div>新华网</div>: the label is its own element
    return bool(_LABEL_CLASS_RE.search(owner.get("class") or "")) or (
        len(owner) == 1
        and owner[0].tag in ("span", "b", "strong", "em", "label", "i")
        and not (owner.text or "").strip()
        and not (owner[0].tail or "").strip()
    )


def _heading_element(line: Line) -> etree._Element:
    """The innermost element whose text is the heading line (``<b>相关阅读</b>`` loose in <body>)."""
    owner = line.owner
    if owner is None:
        return owner
    best = owner
    for el in owner.iter():
        if el is owner or not isinstance(el.tag, str):
            continue
        text = normalize_space(el.text_content())
        if text and (text == line.text or V.HEADING_MORE_SUFFIX_RE.sub("", line.text) == text):
            best = el
            break
    return best


def _empty_title_slot(els: list[etree._Element], date_el: etree._Element | None) -> bool:
    return _title_el(els, date_el)[1]


_CAPTION_CUE_RE = re.compile(
    r"摄[)）]?$|[(（](?:资料图|资料照片|图片来源[^)）]*|[^)）]{0,20}供图)[)）]$|^图为"
    r"|\((?:AP|AFP|Reuters|Getty)[^)]*\)$|\bPhoto(?:graph)?:|\(Photo[^)]*\)$",
    re.I,
)


def _is_caption(line: Line) -> bool:
    """An image caption: inside <figure>/<figcaption>, or a short line in or right after an image block."""
    owner = line.owner
    if owner is None:
        return False
    for el in (owner, *owner.iterancestors()):
        if el.tag in ("figcaption", "figure"):
            return True
        if el.tag in ("body", "article", "main"):
            break
    if len(line.text) > 80:
        return False
    prev = owner.getprevious()
    near_image = owner.find(".//img") is not None or (
        prev is not None
        and (prev.tag == "img" or prev.find(".//img") is not None)
        and not normalize_space(prev.text_content())
    )
    return near_image or bool(_CAPTION_CUE_RE.search(line.text) and len(line.text) <= 60)
