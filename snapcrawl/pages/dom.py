"""Turn an lxml tree into the page's visible *lines*, the unit the generic extractor reasons on.

A snapshot page, read by a person, is a column of lines: nav, title, a metadata line, the
body's paragraphs, the disclaimer, link lists. Label-driven extraction works on that column
whatever the markup: a ``<td>来源</td><td>新华网</td>`` row becomes the lines ``来源`` and
``新华网``, ``<span>发布时间：</span><span>...</span>`` stays one line, ``<br>`` splits.
Each line keeps the element that owns it, so extraction can go back to the tree (links,
list containers, regions) when text alone is not enough.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from snapcrawl.processors import normalize_space

#: Elements that start a new line (CSS block-level, table cells, list items).
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "caption",
        "legend",
        "option",
    ]
)
#: Elements whose content is never visible text.
SKIP_TAGS = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "iframe",
        "svg",
        "canvas",
        "head",
        "object",
        "embed",
        "select",
        "textarea",
        "button",
        "map",
    ]
)
HEADING_TAGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
BOLD_TAGS = frozenset(("strong", "b"))
#: Region words in class/id marking page furniture, never article body.
_FURNITURE_RE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|menu|footer|foot|header|topbar|breadcrumbs?|crumbs?|sidebar|side|aside|"
    r"copyright|banner|ad|ads|advert|share|toolbar|comment|comments|login|search|hot|rank|ranking)"
    r"(?:$|[\s_-])",
    re.I,
)
_FURNITURE_TAGS = frozenset(("nav", "footer", "aside", "header", "menu"))


@dataclass(slots=True)
class Line:
    """One visible line of the page."""

    index: int
    text: str
    owner: etree._Element  # the block element the line belongs to
    tag: str
    link_chars: int = 0  # how many of its characters sit inside <a>
    hrefs: list[str] = field(default_factory=list)
    heading: int = 0  # 1..6 when inside <hN>
    bold: bool = False  # the whole line is inside <strong>/<b>
    furniture: bool = False  # inside nav/footer/aside/header or a class/id saying so

    @property
    def link_density(self) -> float:
        return self.link_chars / len(self.text) if self.text else 0.0


class _Builder:
    __slots__ = (
        "bold_chars",
        "bold_depth",
        "buf",
        "furn_depth",
        "heading",
        "hrefs",
        "in_a",
        "lines",
        "link_chars",
        "open_hrefs",
        "owners",
    )

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.buf: list[str] = []
        self.link_chars = 0
        self.bold_chars = 0
        self.hrefs: list[str] = []
        self.open_hrefs: list[str] = []  # hrefs of the <a> elements we are inside (they span lines)
        self.owners: list[etree._Element] = []
        self.in_a = 0
        self.heading = 0
        self.furn_depth = 0
        self.bold_depth = 0

    def add(self, text: str | None) -> None:
        if not text:
            return
        self.buf.append(text)
        if self.in_a or self.bold_depth:
            visible = len(_WS_RE.sub("", text))
            if self.in_a:
                self.link_chars += visible
            if self.bold_depth:
                self.bold_chars += visible

    def flush(self) -> None:
        if self.buf:
            text = normalize_space("".join(self.buf))
            if text:
                owner = self.owners[-1] if self.owners else None
                visible = len(_WS_RE.sub("", text))
                self.lines.append(
                    Line(
                        index=len(self.lines),
                        text=text,
                        owner=owner,
                        tag=owner.tag if owner is not None and isinstance(owner.tag, str) else "",
                        link_chars=min(self.link_chars, len(text)),
                        hrefs=self.hrefs,
                        heading=self.heading,
                        bold=self.bold_chars >= visible,
                        furniture=self.furn_depth > 0,
                    )
                )
        self.buf = []
        self.link_chars = 0
        self.bold_chars = 0
        self.hrefs = list(self.open_hrefs)


_WS_RE = re.compile(r"[\s\u00a0\u3000]+")


#: Containers that hold the whole page or the whole article: their classes describe the page
#: ("has-sidebar", "header-fixed"), never mark them as furniture.
_NEVER_FURNITURE = frozenset(("html", "body", "main", "article"))


def _is_furniture(el: etree._Element) -> bool:
    if el.tag in _FURNITURE_TAGS:
        return True
    if el.tag in _NEVER_FURNITURE:
        return False
    attrs = el.attrib
    cls = attrs.get("class") or ""
    ident = attrs.get("id") or ""
    if not cls and not ident:
        return False
    return bool(_FURNITURE_RE.search(cls + " " + ident))


def linearize(root: etree._Element) -> list[Line]:
    """Visible lines of the tree under ``root``, in document order."""
    b = _Builder()
    skip_depth = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag
        if not isinstance(tag, str):  # comments, processing instructions
            if event == "end" and not skip_depth:
                b.add(None if el is root else el.tail)
            continue
        if skip_depth:
            if tag in SKIP_TAGS:
                skip_depth += 1 if event == "start" else -1
                if event == "end" and not skip_depth:
                    b.add(None if el is root else el.tail)
            continue
        if event == "start":
            if tag in SKIP_TAGS:
                skip_depth = 1
                continue
            if tag == "br":
                b.flush()
                continue
            is_block = tag in BLOCK_TAGS
            if is_block:
                b.flush()
                b.owners.append(el)
                if tag in HEADING_TAGS:
                    b.heading = int(tag[1])
                if _is_furniture(el):
                    b.furn_depth += 1
            elif tag == "a":
                b.in_a += 1
                href = el.get("href") or ""
                b.open_hrefs.append(href)
                if href:
                    b.hrefs.append(href)
            elif tag in BOLD_TAGS:
                b.bold_depth += 1
            b.add(el.text)
        else:  # end
            if tag in SKIP_TAGS:
                skip_depth = 0
                b.add(None if el is root else el.tail)
                continue
            if tag == "br":
                b.add(None if el is root else el.tail)
                continue
            if tag in BLOCK_TAGS:
                b.flush()
                if b.owners and b.owners[-1] is el:
                    b.owners.pop()
                if tag in HEADING_TAGS:
                    b.heading = 0
                if _is_furniture(el):
                    b.furn_depth -= 1
            elif tag == "a":
                b.in_a -= 1
                if b.open_hrefs:
                    b.open_hrefs.pop()
            elif tag in BOLD_TAGS:
                b.bold_depth -= 1
            b.add(None if el is root else el.tail)
    b.flush()
    return b.lines


def element_text(el: etree._Element, sep: str = " ") -> str:
    """Normalised visible text of one element, its lines joined by ``sep``.

    A childless element (most paragraphs a profile selects) is one line of its own text:
    read directly, what :func:`linearize` would give, without building the line.
    """
    if len(el) == 0:
        tag = el.tag
        if not isinstance(tag, str) or tag in SKIP_TAGS or tag == "br":
            return ""
        return normalize_space(el.text)
    return sep.join(line.text for line in linearize(el))


def is_ancestor(ancestor: etree._Element, el: etree._Element | None) -> bool:
    """True when ``ancestor`` is ``el`` or contains it."""
    while el is not None:
        if el is ancestor:
            return True
        el = el.getparent()
    return False
