"""Boilerplate out, structure in: what document generators add around the content.

Real documentation is generated: texinfo and DocBook HTML carry "Next: / Previous: / Up:"
navigation, Sphinx and MkDocs sidebars and footers, PDFs a table of contents with dot
leaders, an index and a running header on every page, man pages rendered as text a layout
whose short lines are options, not headings. Indexed as text, all of it competes with the
content for retrieval and ends up quoted as the answer. This module removes it and keeps
what the layout meant: a definition list or option table stays term + description in one
element, and headings come from structure (a tag, a man page's section line, a font size),
never from "any short line". Measured on a corpus of Debian package documentation
(eval/realdocs, ADR 0021).

Everything here is a pure function of the text, bounded by its size, so `ingest/parse.py`
calls it inside the same limits as the partitioners.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from core.types import Element

# --- HTML ---------------------------------------------------------------------------------

#: Class names (whole tokens) of the navigation, sidebars, tables of contents and footers
#: that texinfo, DocBook, Sphinx, MkDocs, Doxygen and javadoc-style generators emit.
_BOILERPLATE_CLASSES = frozenset(
    """
    header nav-panel navheader navfooter navigation nav navbar breadcrumb breadcrumbs
    related sphinxsidebar sphinxsidebarwrapper footer toc contents shortcontents
    mini-toc menu index-cp index-fn index-vr index-ky index-pg index-tp printindex
    headerlink md-header md-footer md-sidebar md-nav sidebar skip-link skip-to-content topbar
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_BOILERPLATE_TAGS = ("nav", "header", "footer", "aside", "script", "style", "noscript", "form")


_BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "search"})


def _is_boilerplate(element: Any) -> bool:
    """Navigation by its tag, its ARIA role or a class token (case-insensitive: old
    DocBook writes "TOC" and "NAVHEADER"); one pass in Python, not an XPath per class."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _BOILERPLATE_TAGS or element.get("role") in _BOILERPLATE_ROLES:
        return True
    classes = element.get("class")
    return bool(classes) and not _BOILERPLATE_CLASSES.isdisjoint(classes.lower().split())


def clean_html(text: str) -> str:
    """The page without its navigation, sidebars, tables of contents, indexes and
    footers, and with each definition list item (`<dt>` + `<dd>`) as one paragraph
    "term: description", so an option stays paired with what it does."""
    from lxml import etree
    from lxml import html as lxml_html

    # An XHTML page's XML declaration names an encoding, which lxml refuses on text.
    text = re.sub(r"\A\s*<\?xml[^>]{0,200}\?>", "", text)
    try:
        root = lxml_html.document_fromstring(text)
    except (etree.ParserError, ValueError):  # empty or not HTML at all: leave it to unstructured
        return text
    for element in [e for e in root.iter() if _is_boilerplate(e)]:
        if element.getparent() is not None:
            element.drop_tree()
    for element in root.xpath("//hr"):
        element.drop_tree()
    for block in root.xpath("//ul | //ol | //p | //table | //dl | //div[not(.//div)]"):
        if block.getparent() is not None and _mostly_links(block):
            block.drop_tree()
    for definitions in root.xpath("//dl"):
        _pair_definitions(definitions)
    result: str = lxml_html.tostring(root, encoding="unicode")
    return result


def _mostly_links(block: Any) -> bool:
    """A block of at least five links whose text is nearly all link text: a menu, a
    table of contents, a "see also" list of pages, not prose."""
    links = block.xpath(".//a")
    if len(links) < 5:
        return False
    text = len("".join(block.text_content().split()))
    linked = sum(len("".join(link.text_content().split())) for link in links)
    return text > 0 and linked / text >= 0.8


def _pair_definitions(definitions: Any) -> None:
    """Rewrite a `<dl>` as paragraphs "term: description" (terms sharing one description
    are joined with commas); nested lists inside a description are kept as its text."""
    items: list[tuple[list[str], list[str]]] = []
    for child in list(definitions):
        tag = child.tag if isinstance(child.tag, str) else ""
        text = " ".join(child.text_content().split())
        if tag == "dt":
            text = strip_marks(text)
            if items and not items[-1][1]:
                items[-1][0].append(text)
            else:
                items.append(([text], []))
        elif tag == "dd" and text:
            if not items:
                items.append(([], []))
            items[-1][1].append(text)
    parent = definitions.getparent()
    if parent is None:
        return
    from lxml import html as lxml_html

    for terms, descriptions in items:  # addprevious, not insert(i): linear in the items
        paragraph = lxml_html.Element("p")
        term = ", ".join(t for t in terms if t)
        description = " ".join(descriptions)
        paragraph.text = f"{term}: {description}" if term and description else term or description
        definitions.addprevious(paragraph)
    definitions.tail = None
    parent.remove(definitions)


# --- text-level boilerplate, every format ----------------------------------------------------

_NAVIGATION = re.compile(
    r"^\s*(?:(?:next|previous|prev|up|home|top|contents|index)\s*:\s*\S.*?[,;|]?\s*){2,}"
    r"|^\s*file:\s*\S+\.info,\s+node:"  # an info file's node line
    r"|^\s*(?:\[(?:contents|index)\]\s*)+$",
    re.IGNORECASE,
)
_LICENCE_TITLE = re.compile(
    r"^(?:appendix\s+\w+[:.]?\s*)?(?:[\d.]+\s+)?(?:the\s+)?gnu\s+(?:free\s+documentation|"
    r"(?:lesser\s+|library\s+)?general\s+public)\s+licen[cs]e",
    re.IGNORECASE,
)
_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb06": "st",
    }
)
#: Permalink marks that generators append to headings and terms ("Options¶").
_MARKS = "¶§"


def strip_marks(text: str) -> str:
    """A heading without trailing permalink marks; linear (a regex anchored at the end
    would backtrack over a long run of spaces). A "#" goes only after a space or a ")",
    so "C#" keeps its name."""
    stripped = text.rstrip().rstrip(_MARKS).rstrip()
    if stripped.endswith((" #", ")#")):
        stripped = stripped[:-1].rstrip()
    return stripped


_DOT_LEADER = re.compile(r"(?:\.\s?){4,}\s*[\divxlc]+\s*$", re.IGNORECASE)
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?[\divxlc]{1,6}(?:\s*(?:of|/)\s*\d+)?\s*$", re.I)
_INDEX_ENTRY = re.compile(r"^[^\d].{0,80}?(?:,\s*\d{1,4}(?:[-–]\d{1,4})?)+\s*$")


def unligature(text: str) -> str:
    """PDF typesetting ligatures (U+FB00-FB06) as letters: "ﬁles" must match "files"."""
    return text.translate(_LIGATURES)


def is_page_number(text: str) -> bool:
    return bool(_PAGE_NUMBER.match(text))


def is_toc_line(text: str) -> bool:
    """ "2.4. OPTIONS . . . . . . 4": a table-of-contents or index entry with a leader.
    Only short lines are tried: an entry is one, and the pattern backtracks on long ones."""
    return len(text) <= 300 and bool(_DOT_LEADER.search(text))


def join_lines(lines: Iterable[str]) -> str:
    """A paragraph's lines as one text, rejoining words hyphenated at a line end
    ("declara-" + "tions"), but not compounds ("built-" + "In" keeps its hyphen)."""
    text = ""
    for line in lines:
        if re.search(r"[a-z]-$", text) and line[:1].islower():
            text = text[:-1] + line
        else:
            text = f"{text} {line}" if text else line
    return text


def strip_front_matter(text: str) -> str:
    """Markdown without its YAML front matter (`---` ... `---` at the very top)."""
    match = re.match(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*\n", text, re.DOTALL)
    return text[match.end() :] if match and match.end() < 20_000 else text


def tidy_headings(elements: Sequence[Element]) -> list[Element]:
    """Headings without permalink marks ("Options¶", "path.join()#"), and no section of
    a licence text appended to a manual (the GFDL or GPL in full): it is the same text
    in every GNU manual and would answer every question about copying or changing."""
    kept: list[Element] = []
    skipping: int | None = None
    for element in elements:
        if element.kind == "Title":
            if skipping is not None and element.depth <= skipping:
                skipping = None
            if skipping is None and _LICENCE_TITLE.match(element.text):
                skipping = element.depth
            cleaned = strip_marks(element.text)
            if cleaned != element.text and cleaned:
                element = Element(cleaned, element.kind, element.page, element.depth)
        if skipping is None:
            kept.append(element)
    return kept


_NAVIGATION_SECTION = re.compile(
    r"^(?:table\s+of\s+)?contents$|^list\s+of\s+(?:figures|tables|examples)$|^(?:[\w-]+\s+){0,3}index$",
    re.IGNORECASE,
)


def drop_navigation_sections(elements: Sequence[Element]) -> list[Element]:
    """Without the body of "Table of Contents", "List of Figures" and "... Index"
    sections, up to the next heading: in a PDF they are page references, not content."""
    kept: list[Element] = []
    skipping = False
    for element in elements:
        if element.kind == "Title":
            skipping = bool(_NAVIGATION_SECTION.match(element.text.strip()))
            if skipping:
                continue
        if not skipping:
            kept.append(element)
    return kept


def is_navigation(text: str) -> bool:
    """ "Next: X, Previous: Y, Up: Z" and the like: links between pages, not content."""
    return len(text) < 400 and bool(_NAVIGATION.match(text))


def _leader_lines(text: str) -> float:
    """Share of a text's lines that are table-of-contents entries ("Title ..... 12")."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return 0.0
    return sum(is_toc_line(line) for line in lines) / len(lines)


def drop_boilerplate(elements: Sequence[Element]) -> list[Element]:
    """Elements without navigation lines, table-of-contents entries, bare page numbers
    and index pages, whatever the format produced them."""
    kept = [
        element
        for element in elements
        if not is_navigation(element.text)
        and _leader_lines(element.text) < 0.5
        and not _PAGE_NUMBER.match(element.text)
    ]
    return _drop_index_pages(kept)


def _drop_index_pages(elements: list[Element]) -> list[Element]:
    """A page (PDF) whose lines are mostly "term, 12, 45" entries is a back-of-book index."""
    by_page: dict[int, list[Element]] = {}
    for element in elements:
        if element.page is not None:
            by_page.setdefault(element.page, []).append(element)
    index_pages = set()
    for page, items in by_page.items():
        lines = [line for e in items for line in e.text.splitlines() if line.strip()]
        entries = sum(len(line) <= 200 and bool(_INDEX_ENTRY.match(line)) for line in lines)
        if len(lines) >= 8 and entries / len(lines) >= 0.6:
            index_pages.add(page)
    if not index_pages:
        return elements
    return [e for e in elements if e.page not in index_pages or e.kind == "Title"]


def running_lines(pages: Sequence[Sequence[str]], min_share: float = 0.5) -> set[str]:
    """Texts that open or close most pages (a running header or footer), compared with
    digits blanked out so "Page 3 of 9" matches "Page 4 of 9"."""
    if len(pages) < 4:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        edge = {_shape(line) for line in (*lines[:2], *lines[-2:])}
        counts.update(edge)
    return {shape for shape, n in counts.items() if n >= min_share * len(pages) and shape}


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def is_running_line(line: str, running: set[str]) -> bool:
    return _shape(line) in running


# --- man pages rendered as text ----------------------------------------------------------

_MAN_HEADER = re.compile(r"^(\S+)\((\w+)\)\s+.*\s\1\(\2\)\s*$")
_MAN_SECTION = re.compile(r"^[A-Z][A-Z0-9 ,/&()'-]{1,60}$")
_OPTION = re.compile(r"^[-+]{1,2}[\w?#@]")
_SAME_LINE_OPTION = re.compile(r"^([-+]{1,2}[\w?#@][^\s]*)\s{2,}(\S.*)$")


def looks_like_manpage(text: str) -> bool:
    """A man page as `man` renders it: the "NAME(1) ... NAME(1)" header or a NAME
    section among the first lines, then SYNOPSIS or DESCRIPTION at column 0."""
    head = text.lstrip("\n")[:4096].splitlines()[:12]
    if head and _is_man_header(head[0].strip()):
        return True
    stripped = [line.rstrip() for line in text.splitlines()[:400]]
    return "NAME" in stripped[:12] and ("SYNOPSIS" in stripped or "DESCRIPTION" in stripped)


def partition_manpage(text: str) -> list[Element]:
    """A rendered man page as elements: section lines at column 0 are titles (depth 0),
    subsection lines at a small indent titles (depth 1), and an option (a line at the
    body's indent, followed by lines indented further) one element "option: description".
    Running header and footer lines are dropped."""
    lines = [line.rstrip().replace("\t", "        ") for line in text.splitlines()]
    if lines and _is_man_header(lines[0].strip()):
        header = lines[0].strip()
        lines = [line for line in lines if line.strip() != header]
        footer = lines[-1].strip() if lines else ""
        if footer and len(footer) <= 200 and re.search(r"\S+\(\w+\)$", footer):
            lines = lines[:-1]  # the footer: "GNU sed 4.9   2022   SED(1)"
    body_indent = _body_indent(lines)
    elements: list[Element] = []
    paragraph: list[str] = []
    term: str | None = None

    def flush() -> None:
        nonlocal paragraph, term
        # `man` hyphenates at line ends with U+2010: "back\u2010" + "slash" is one word.
        body = " ".join(re.sub("\u2010 ", "", " ".join(paragraph)).split())
        if term is not None:
            elements.append(Element(f"{term}: {body}" if body else term, "ListItem"))
        elif body:
            elements.append(Element(body, "NarrativeText"))
        paragraph, term = [], None

    for index, line in enumerate(lines):
        if not line.strip():
            if term is None:
                flush()
            continue
        indent = len(line) - len(line.lstrip())
        content = line.strip()
        if indent == 0 and _MAN_SECTION.match(content):
            flush()
            elements.append(Element(content.title(), "Title", depth=1))
            continue
        if 0 < indent < body_indent and len(content) < 80 and not content.endswith("."):
            flush()
            elements.append(Element(content, "Title", depth=2))
            continue
        same_line = _SAME_LINE_OPTION.match(content) if indent <= body_indent else None
        if same_line is not None:  # a tag shorter than the indent: "-s     separate files"
            flush()
            term = same_line.group(1)
            paragraph.append(same_line.group(2))
            continue
        following = _next_text_line(lines, index)
        deeper = following is not None and _indent(following) > indent
        if indent <= body_indent and deeper and _is_term(content):
            flush()
            term = content
            continue
        if term is not None and indent <= body_indent and paragraph:
            flush()  # back at the body's indent: the description has ended
        paragraph.append(content)
    flush()
    # The page's title is its NAME line ("sed - stream editor ..."), above every section.
    named = next(
        (b for a, b in itertools.pairwise(elements) if a.kind == "Title" and a.text == "Name"),
        None,
    )
    if named is not None and named.kind != "Title":
        elements.insert(0, Element(named.text, "Title", depth=0))
    return elements


# --- info files (texinfo rendered as text) ------------------------------------------------

_INFO_UNDERLINE = {"*": "#", "=": "##", "-": "###", ".": "####"}


def looks_like_info(text: str) -> bool:
    return "\x1fFile: " in text[:20_000] or bool(re.match(r"This is \S+\.info, produced by", text))


def info_to_markdown(text: str) -> str:
    """An info file as Markdown: node lines, menus and the tag table dropped; headings
    from their underlines (`*` chapter, `=` section, `-` subsection, `.` below)."""
    text = text.split("\x1fTag Table:", 1)[0].split("\nLocal Variables:", 1)[0]
    out: list[str] = []
    in_menu = False
    for line in text.replace("\x1f", "").splitlines():
        stripped = line.strip()
        if re.match(r"File: \S+,\s+Node:", stripped):
            continue
        if stripped == "* Menu:":
            in_menu = True
            continue
        if in_menu:
            if not stripped or stripped.startswith("* ") or line.startswith(" "):
                continue
            in_menu = False
        mark = _INFO_UNDERLINE.get(stripped[:1])
        if mark and out and stripped == stripped[0] * len(stripped) and len(stripped) >= 3:
            heading = out.pop().strip()
            out.append(f"{mark} {heading}")
            continue
        out.append(line)
    return "\n".join(out)


def _is_man_header(line: str) -> bool:
    """ "SED(1)   User Commands   SED(1)" (short lines only: the back-reference pattern
    would backtrack over a long one)."""
    return len(line) <= 200 and bool(_MAN_HEADER.match(line))


def _is_term(line: str) -> bool:
    """An option ("-n, --quiet") or a short entry name ("scale ( expression )",
    "RAG_HOME"): not a wrapped sentence of the body."""
    if _OPTION.match(line):
        return len(line) < 100
    return len(line) <= 60 and not line.endswith((".", ":", ",")) and len(line.split()) <= 6


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _next_text_line(lines: Sequence[str], index: int) -> str | None:
    for line in lines[index + 1 : index + 3]:
        if line.strip():
            return line
    return None


def _body_indent(lines: Sequence[str]) -> int:
    """The indent of ordinary paragraphs (7 for `man` output): the smallest indent that
    a tenth of the indented lines share (subsection lines are fewer, descriptions deeper)."""
    indents = Counter(_indent(line) for line in lines if line.strip() and _indent(line) > 0)
    total = sum(indents.values())
    common = [indent for indent, n in indents.items() if n >= 0.1 * total]
    return min(common) if common else 0
