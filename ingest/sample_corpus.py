"""The demo corpus: the template's own architecture notes and ADRs, in several formats.

`make demo` renders `docs/` into `.data/sample-corpus/` so the parsers meet real
Markdown, HTML, DOCX, PDF and plain text that we wrote ourselves (no licensing
questions, and the questions the demo asks have answers we can check). Mermaid
diagrams are left out: the corpus is the prose, and diagram code would only compete
with the sentences that answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import markdown as md_lib

#: docs file -> rendered format. Each format appears at least once.
PLAN: dict[str, str] = {
    "architecture.md": "md",
    "adr/0001-embedded-vector-store.md": "html",
    "adr/0002-default-embedding-model.md": "docx",
    "adr/0003-chunking.md": "pdf",
    "adr/0004-parsing-offline.md": "txt",
}

# fpdf2's core fonts are latin-1 only; these are the characters our docs use beyond it.
_LATIN1 = str.maketrans(
    {
        "→": "->",
        "—": "-",
        "–": "-",
        "≥": ">=",
        "≤": "<=",
        "×": "x",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "…": "...",
        "≈": "~",
    }
)


#: A fenced Mermaid block, from its opening line to its closing fence.
_MERMAID = re.compile(r"^```mermaid[^\n]*\n.*?^```[ \t]*(?:\n|\Z)", re.M | re.S)


def without_diagrams(markdown: str) -> str:
    """The Markdown without its ```mermaid blocks (other code blocks stay): the demo
    indexes what the docs say, not the node ids and arrows of their diagrams."""
    return _MERMAID.sub("", markdown)


def _blocks(text: str) -> list[tuple[str, str]]:
    """Split Markdown into (kind, text) blocks: h1..h6, p, li, code, table."""
    blocks: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append(("code", "\n".join(lines[i + 1 : j])))
            i = j + 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)", line)
        if heading:
            blocks.append((f"h{len(heading.group(1))}", heading.group(2).strip()))
        elif line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            rows = [r for r in lines[i:j] if not re.match(r"^\|[\s:|-]+\|$", r)]
            blocks.append(("table", "\n".join(rows)))
            i = j
            continue
        elif re.match(r"^\s*([-*]|\d+\.)\s+", line):
            blocks.append(("li", re.sub(r"^\s*([-*]|\d+\.)\s+", "", line)))
        elif line.strip():
            j = i
            while (
                j < len(lines)
                and lines[j].strip()
                and not re.match(r"^(#|\||```|\s*[-*]\s)", lines[j])
            ):
                j += 1
            blocks.append(("p", " ".join(x.strip() for x in lines[i:j])))
            i = max(j, i + 1)
            continue
        i += 1
    return blocks


def _plain(text: str) -> str:
    """Markdown inline markup removed (for formats that have their own styling)."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    return re.sub(r"[*`]", "", text)


def render_html(source: str, target: Path) -> None:
    body = md_lib.markdown(source, extensions=["tables", "fenced_code"])
    title = _plain(source.splitlines()[0].lstrip("# "))
    target.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body>{body}</body></html>",
        encoding="utf-8",
    )


def render_docx(source: str, target: Path) -> None:
    import docx

    document = docx.Document()
    for kind, text in _blocks(source):
        if kind.startswith("h"):
            document.add_heading(_plain(text), level=min(int(kind[1]), 4) - 1 or 1)
        elif kind == "li":
            document.add_paragraph(_plain(text), style="List Bullet")
        elif kind == "table":
            rows = [[c.strip() for c in r.strip("|").split("|")] for r in text.splitlines()]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = _plain(cell)
        else:
            document.add_paragraph(_plain(text))
    document.save(str(target))


def render_pdf(source: str, target: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for kind, text in _blocks(source.translate(_LATIN1)):
        if kind.startswith("h"):
            pdf.set_font("Helvetica", "B", {1: 18, 2: 14}.get(int(kind[1]), 12))
            pdf.ln(2)
            pdf.multi_cell(width, 8, _plain(text), align="L", new_x="LMARGIN", new_y="NEXT")
        elif kind == "code":
            pdf.set_font("Courier", "", 9)
            pdf.multi_cell(width, 5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font("Helvetica", "", 11)
            prefix = "- " if kind == "li" else ""
            pdf.multi_cell(
                width, 6, prefix + _plain(text), align="L", new_x="LMARGIN", new_y="NEXT"
            )
        pdf.ln(1)
    pdf.output(str(target))


def render_txt(source: str, target: Path) -> None:
    lines = []
    for kind, text in _blocks(source):
        if kind.startswith("h"):
            lines += ["", _plain(text).upper() if kind == "h1" else _plain(text), ""]
        elif kind == "li":
            lines.append(f"- {_plain(text)}")
        else:
            lines += [_plain(text), ""]
    target.write_text("\n".join(lines).strip() + "\n", encoding="utf-8")


def render_md(source: str, target: Path) -> None:
    target.write_text(source, encoding="utf-8")


_RENDERERS: dict[str, Callable[[str, Path], None]] = {
    "md": render_md,
    "html": render_html,
    "docx": render_docx,
    "pdf": render_pdf,
    "txt": render_txt,
}


def build(docs_dir: Path, target_dir: Path) -> list[Path]:
    """Render every planned doc, without its diagrams; returns the written files."""
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, fmt in PLAN.items():
        source = without_diagrams((docs_dir / relative).read_text(encoding="utf-8"))
        target = target_dir / f"{Path(relative).stem}.{fmt}"
        _RENDERERS[fmt](source, target)
        written.append(target)
    return written
