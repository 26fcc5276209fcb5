from __future__ import annotations

from core.types import Element, ParsedDocument
from ingest.chunk import StructureChunker, chunk_id, content_hash, embedding_text


def _doc(*elements: Element, source: str = "notes.md") -> ParsedDocument:
    return ParsedDocument(source=source, title="Notes", elements=elements, content_hash="h")


def test_titles_open_sections_and_chunks_never_cross_them() -> None:
    doc = _doc(
        Element("Store", "Title", depth=0),
        Element("Qdrant Edge runs in process.", "NarrativeText"),
        Element("Ingest", "Title", depth=0),
        Element("Files are parsed first.", "NarrativeText"),
    )
    chunks = StructureChunker(1000, 100).chunk(doc)
    assert [c.section for c in chunks] == ["Store", "Ingest"]
    assert [c.text for c in chunks] == ["Qdrant Edge runs in process.", "Files are parsed first."]


def test_nested_titles_build_a_section_path() -> None:
    doc = _doc(
        Element("Guide", "Title", depth=0),
        Element("Setup", "Title", depth=1),
        Element("Run make.", "NarrativeText"),
        Element("Usage", "Title", depth=1),
        Element("Ask things.", "NarrativeText"),
    )
    assert [c.section for c in StructureChunker(1000, 100).chunk(doc)] == [
        "Guide > Setup",
        "Guide > Usage",
    ]


def test_small_elements_are_packed_up_to_the_size_limit() -> None:
    paragraphs = [Element(f"Sentence number {i} is here.", "NarrativeText") for i in range(20)]
    chunks = StructureChunker(200, 20).chunk(_doc(*paragraphs))
    assert 1 < len(chunks) < 20
    assert all(len(c.text) <= 200 for c in chunks)
    joined = "\n\n".join(c.text for c in chunks)
    assert all(p.text in joined for p in paragraphs)


def test_code_blocks_are_never_split() -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(60))  # far over the limit
    doc = _doc(
        Element("intro", "NarrativeText"),
        Element(code, "CodeSnippet"),
        Element("outro", "NarrativeText"),
    )
    chunks = StructureChunker(200, 20).chunk(doc)
    assert [c.text for c in chunks] == ["intro", code, "outro"]


def test_long_tables_are_cut_between_rows_and_repeat_their_header() -> None:
    rows = [f"row {i} | value {i}" for i in range(60)]
    table = "\n".join(["name | value", *rows])
    chunks = StructureChunker(200, 20).chunk(_doc(Element(table, "Table")))
    assert len(chunks) > 1
    assert all(c.text.startswith("name | value\n") for c in chunks)
    assert all(len(c.text) <= 200 for c in chunks)
    body = [line for c in chunks for line in c.text.splitlines()[1:]]
    assert body == rows  # every row once, in order, whole


def test_long_paragraphs_are_split_with_overlap() -> None:
    words = " ".join(f"w{i}" for i in range(400))
    chunks = StructureChunker(300, 50).chunk(_doc(Element(words, "NarrativeText")))
    assert len(chunks) > 1
    assert all(len(c.text) <= 300 for c in chunks)
    first_tail = chunks[0].text.split()[-1]
    assert first_tail in chunks[1].text.split()  # overlap carries context across the cut


def test_chunk_ids_are_deterministic_and_position_independent() -> None:
    chunker = StructureChunker(1000, 100)
    body = Element("Stable paragraph.", "NarrativeText")
    before = chunker.chunk(_doc(Element("S", "Title"), body))
    after = chunker.chunk(_doc(Element("New intro.", "NarrativeText"), Element("S", "Title"), body))
    assert before[0].id == after[-1].id
    assert before[0].id == chunker.chunk(_doc(Element("S", "Title"), body))[0].id


def test_chunk_ids_differ_by_source_text_and_repetition() -> None:
    digest = content_hash("same")
    ids = {
        chunk_id("a.md", digest),
        chunk_id("b.md", digest),
        chunk_id("a.md", digest, 1),
        chunk_id("a.md", content_hash("other")),
    }
    assert len(ids) == 4


def test_repeated_text_in_one_source_gets_distinct_ids() -> None:
    doc = _doc(
        Element("A", "Title"),
        Element("Same text.", "NarrativeText"),
        Element("B", "Title"),
        Element("Same text.", "NarrativeText"),
    )
    chunks = StructureChunker(1000, 100).chunk(doc)
    assert len({c.id for c in chunks}) == 2


def test_embedding_text_carries_title_and_section() -> None:
    chunk = StructureChunker(1000, 100).chunk(
        _doc(Element("Store", "Title"), Element("Body.", "NarrativeText"))
    )[0]
    assert embedding_text(chunk) == "Notes > Store\nBody."


def test_a_document_of_titles_only_still_yields_a_chunk() -> None:
    chunks = StructureChunker(1000, 100).chunk(_doc(Element("Quarterly review", "Title")))
    assert [c.text for c in chunks] == ["Quarterly review"]
