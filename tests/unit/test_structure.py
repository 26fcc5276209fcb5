"""Boilerplate removal and structure recovery, on markup shaped like real generators'."""

from __future__ import annotations

from core.types import Element
from ingest.structure import (
    clean_html,
    drop_boilerplate,
    drop_navigation_sections,
    info_to_markdown,
    is_toc_line,
    join_lines,
    looks_like_info,
    looks_like_manpage,
    partition_manpage,
    running_lines,
    strip_front_matter,
    tidy_headings,
    unligature,
)

TEXINFO = """<html><body><div class="section" id="Simple-Example">
<div class="header"><p>Next: <a href="Types.html" rel="next">Types</a>, Previous:
<a href="The-Basics.html" rel="prev">The Basics</a>, Up: <a href="Using.html">Using</a>
&nbsp; [<a href="Index.html" rel="index">Index</a>]</p></div><hr>
<h3 class="section">2.2 Simple Example</h3><p>Here is a trivial example.</p>
<dl><dt><code>-a</code></dt><dt><code>--append</code></dt>
<dd><p>Append the resource use information to the output file.</p></dd>
<dt>-o <var>file</var> &para;</dt><dd>Write to <var>file</var>.</dd></dl>
</div></body></html>"""

SPHINX = """<html><body><div class="related" role="navigation"><h3>Navigation</h3>
<ul><li><a href="#">Policy 0.12 documentation</a> &#187;</li></ul></div>
<div class="document"><h1>Packaging<a class="headerlink" href="#p">&para;</a></h1>
<p>Packages must use Python 3.</p></div>
<div class="sphinxsidebar"><h3>Table of Contents</h3><ul><li><a href="#a">A</a></li></ul></div>
<div class="footer" role="contentinfo">Created using Sphinx 5.3.0.</div></body></html>"""

DOCBOOK_TOC = """<html><body><div class="TOC"><dl><dt>Table of Contents</dt>
<dt>1. <a href="#i">Introduction</a></dt></dl></div><h1>Introduction</h1>
<p>Prose.</p><p><a href="a">NAME</a> <a href="b">SYNOPSIS</a> <a href="c">OPTIONS</a>
<a href="d">EXAMPLES</a> <a href="e">BUGS</a></p></body></html>"""

MAN = """SED(1)                          User Commands                         SED(1)

NAME
       sed - stream editor for filtering and transforming text

DESCRIPTION
       Sed  is  a  stream  editor.   A  stream editor is used to perform basic
       text transformations on an input stream.

       -n, --quiet, --silent
              suppress automatic printing of pattern space

       -i[SUFFIX], --in-place[=SUFFIX]

              edit files in place (makes backup if SUFFIX supplied)

       -s     consider files as separate rather than as a single continu\u2010
              ous long stream.

   Output Control
       -c, --count
              Suppress normal output; instead print a count of matching lines.

GNU sed 4.9                      January 2023                           SED(1)
"""


def test_texinfo_navigation_is_dropped_and_definitions_stay_paired() -> None:
    cleaned = clean_html(TEXINFO)
    assert "Next:" not in cleaned
    assert "Previous:" not in cleaned
    assert "-a, --append: Append the resource use information to the output file." in cleaned
    assert "-o file: Write to file." in cleaned  # the permalink mark is gone from the term
    assert "2.2 Simple Example" in cleaned


def test_sphinx_breadcrumbs_sidebar_footer_and_permalinks_are_dropped() -> None:
    cleaned = clean_html(SPHINX)
    for boilerplate in ("Navigation", "documentation", "Table of Contents", "Sphinx 5.3.0"):
        assert boilerplate not in cleaned
    assert "Packages must use Python 3." in cleaned
    assert "¶" not in cleaned


def test_tables_of_contents_and_link_lists_are_dropped_whatever_the_case() -> None:
    cleaned = clean_html(DOCBOOK_TOC)
    assert "Table of Contents" not in cleaned
    assert "SYNOPSIS" not in cleaned  # a paragraph of nothing but links
    assert "Prose." in cleaned


def test_clean_html_leaves_non_html_alone() -> None:
    assert clean_html("") == ""


def test_xhtml_with_an_xml_declaration_is_cleaned_too() -> None:
    page = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        '<body><div class="navheader">Next: a, Prev: b</div><p>Body.</p></body></html>'
    )
    cleaned = clean_html(page)
    assert "Next:" not in cleaned
    assert "Body." in cleaned


def test_a_man_page_has_sections_and_options_with_their_descriptions() -> None:
    assert looks_like_manpage(MAN)
    elements = partition_manpage(MAN)
    texts = [e.text for e in elements]
    assert elements[0] == Element(
        "sed - stream editor for filtering and transforming text", "Title", depth=0
    )
    titles = [(e.text, e.depth) for e in elements if e.kind == "Title"]
    assert titles[1:] == [("Name", 1), ("Description", 1), ("Output Control", 2)]
    assert "-n, --quiet, --silent: suppress automatic printing of pattern space" in texts
    assert (
        "-i[SUFFIX], --in-place[=SUFFIX]: edit files in place (makes backup if SUFFIX supplied)"
        in texts
    )
    assert "-s: consider files as separate rather than as a single continuous long stream." in texts
    assert "-c, --count: Suppress normal output; instead print a count of matching lines." in texts
    assert not any("SED(1)" in t for t in texts)  # running header and footer
    assert not any(e.kind == "Title" and e.text.startswith("-") for e in elements)


def test_prose_is_not_a_man_page() -> None:
    assert not looks_like_manpage("NAME\nJust a note.\n\nNothing else here.\n")


def test_an_info_file_keeps_headings_and_drops_nodes_and_menus() -> None:
    info = (
        "This is bc.info, produced by makeinfo version 6.7 from bc.texi.\n\n"
        "\x1fFile: bc.info,  Node: Introduction,  Next: Basic Elements,  Up: Top\n\n"
        "1 Introduction\n**************\n\n* Menu:\n\n* Description::\n* Options::\n\n"
        "1.1 Description\n===============\n\n'bc' is a language.\n"
        "\x1fTag Table:\nNode: Top203\n\x1fEnd Tag Table\n"
    )
    assert looks_like_info(info)
    markdown = info_to_markdown(info)
    assert "# 1 Introduction" in markdown
    assert "## 1.1 Description" in markdown
    for gone in ("File: bc.info", "Menu", "Description::", "Tag Table", "****"):
        assert gone not in markdown


def test_navigation_toc_lines_and_page_numbers_are_not_content() -> None:
    elements = [
        Element("Next: Types, Previous: The Basics, Up: Using libffi [Index]", "NarrativeText"),
        Element("File: bc.info,  Node: Top,  Next: Intro", "NarrativeText"),
        Element("2.4. OPTIONS . . . . . . . . . . . 4\n2.5. MEMORY . . . . . . . 5", "Title"),
        Element("12", "NarrativeText"),
        Element("Next, compress the file: this is prose.", "NarrativeText"),
    ]
    assert drop_boilerplate(elements) == [elements[-1]]
    assert is_toc_line("Introduction . . . . . . . . iii")
    assert not is_toc_line("Wait... then continue.")


def test_a_back_of_book_index_page_is_dropped() -> None:
    index = [Element(f"asn1_function_{i}, {i + 10}", "NarrativeText", page=9) for i in range(10)]
    body = Element("The library parses ASN.1.", "NarrativeText", page=8)
    assert drop_boilerplate([body, *index]) == [body]


def test_contents_and_index_sections_are_dropped_up_to_the_next_heading() -> None:
    elements = [
        Element("Table of Contents", "Title", depth=1),
        Element("1. Introduction 2. Usage", "NarrativeText"),
        Element("1. Introduction", "Title"),
        Element("bzip2 compresses files.", "NarrativeText"),
        Element("Concept Index", "Title"),
        Element("compression, 4", "NarrativeText"),
    ]
    assert [e.text for e in drop_navigation_sections(elements)] == [
        "1. Introduction",
        "bzip2 compresses files.",
    ]


def test_running_headers_are_found_with_page_numbers_blanked() -> None:
    words = ["apples", "pears", "plums", "figs", "dates", "limes"]
    pages = [
        ["Programming with libbzip2", f"About {w}", "...", f"{w} again", f"Page {i} of 9"]
        for i, w in enumerate(words, 1)
    ]
    running = running_lines(pages)
    assert "programming with libbzip#" in running
    assert "page # of #" in running
    assert not any("apples" in line or "about" in line for line in running)
    assert running_lines(pages[:2]) == set()  # too few pages to tell


def test_licence_appendices_and_permalink_marks_leave_the_headings() -> None:
    elements = [
        Element("Options¶", "Title", depth=1),
        Element("-v: verbose", "ListItem"),
        Element("Appendix A GNU Free Documentation License", "Title", depth=1),
        Element("Everyone is permitted to copy.", "NarrativeText"),
        Element("A.1 Preamble", "Title", depth=2),
        Element("Index", "Title", depth=1),
    ]
    assert [e.text for e in tidy_headings(elements)] == ["Options", "-v: verbose", "Index"]


def test_text_fidelity_helpers() -> None:
    assert unligature("modiﬁed ﬂags") == "modified flags"
    assert join_lines(["declara-", "tions are", "built-", "In"]) == "declarations are built- In"
    assert strip_front_matter("---\ntitle: Users\nlayout: x\n---\n# Users\n") == "# Users\n"
    assert strip_front_matter("# No front matter\n---\n") == "# No front matter\n---\n"


def test_options_become_searchable_terms_on_both_sides() -> None:
    from core.text import option_terms, with_options

    assert option_terms("What does ssh -J do with --in-place and IL-2 or -5?") == "optinplace optj"
    assert with_options("-J destination: connect") == "-J destination: connect optj"
    assert with_options("no options here") == "no options here"


def test_hostile_lines_cost_linear_time() -> None:
    """Each of these took quadratic time in a draft (a 40k-character title: 3 s); at
    these sizes a regression hangs the suite instead of passing."""
    long = 300_000
    for text in (
        ". " * (long // 2) + "x",
        "Next: " + "a " * (long // 2),
        "T" + " " * long + "x",
        "a" + ", 1" * (long // 3) + " x",
        "x(1) " + "y " * (long // 2),
    ):
        drop_boilerplate([Element(text, "NarrativeText", page=1)])
        assert tidy_headings([Element(text, "Title")])
        assert not looks_like_manpage(text)
        partition_manpage(text)


def test_hostile_html_costs_linear_time() -> None:
    """50,000 definition items took 11 s in a draft (an insert per item), 100,000 classed
    elements 3.7 s (an XPath test per class); now each is a fraction of a second."""
    items = "<html><body><dl>" + "<dt>t</dt><dd>d</dd>" * 50_000 + "</dl></body></html>"
    assert clean_html(items).count("<p>t: d</p>") == 50_000
    classed = "<html><body>" + "<div class='NAV'>x</div><p>keep</p>" * 50_000 + "</body></html>"
    cleaned = clean_html(classed)
    assert cleaned.count("keep") == 50_000
    assert "NAV" not in cleaned


def test_a_pdf_table_row_printed_as_separate_boxes_is_one_line_again() -> None:
    from ingest.parse import _Line, _page_furniture

    def line(text: str, top: float, left: float) -> _Line:
        return _Line(text, 10.0, 1, top, top - 10, left)

    rows = _page_furniture(
        [
            line("-c, --check", 700, 72),
            line("-o, --output=FILE", 686, 72),
            line("checks the syntax only", 700, 250),
            line("output file", 686, 250),
            line("Flag", 600, 72),
            line("Compress", 600, 150),
            line("Decompress", 600, 250),
            line("A long sentence of prose in the left column of a two-column page", 500, 72),
            line("and the right column's own line.", 500, 320),
        ]
    )
    texts = [r.text for r in rows]
    assert texts[:3] == [
        "-c, --check: checks the syntax only",
        "-o, --output=FILE: output file",
        "Flag | Compress | Decompress",
    ]
    assert len(texts) == 5  # the prose columns stay apart


def test_many_lines_on_one_page_are_grouped_in_linear_time() -> None:
    """Each line was compared with every row of its page: 100,000 one-character lines
    (a page's character limit) meant 10^10 comparisons; now a few per line."""
    from ingest.parse import _Line, _page_furniture

    lines = [
        _Line("a", 1.0, 1, 100_000.0 - 2 * i, 100_000.0 - 2 * i - 1, 72) for i in range(100_000)
    ]
    assert len(_page_furniture(lines)) == 100_000
