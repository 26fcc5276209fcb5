"""Structure-aware chunking: titles open sections, tables and code stay whole.

Elements are packed into chunks of at most `chunk_size` characters without crossing a
section boundary, so a chunk never mixes two topics and its citation can name its
section. Only an element longer than a chunk is split, with LangChain's
`RecursiveCharacterTextSplitter` (paragraph > line > sentence > word boundaries).
Chunk ids are deterministic, see `chunk_id`. Decision and measurements:
docs/adr/0003-chunking.md.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field

from langchain_text_splitters import RecursiveCharacterTextSplitter

from core.text import embedding_text as embedding_text  # moved to core, shared with rerank
from core.types import DEFAULT_TENANT, Chunk, Element, ParsedDocument

#: Namespace of chunk ids: uuid5(namespace, tenant + source + content hash + occurrence).
CHUNK_NAMESPACE = uuid.UUID("6f1c2a7e-3b7c-4f5e-9a61-2d0c8e5b9a10")
_WHOLE_KINDS = frozenset({"Table", "CodeSnippet"})
_TITLE_KINDS = frozenset({"Title"})


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(source: str, text_hash: str, occurrence: int = 0, tenant: str = DEFAULT_TENANT) -> str:
    """Same tenant + source + text -> same id, so re-ingesting never duplicates a chunk,
    and two tenants' `report.md` never share (or overwrite) a point.

    The position is deliberately not part of the id: inserting a paragraph above a chunk
    does not change that chunk's id, so only new text is re-embedded. `occurrence`
    separates identical texts repeated inside one source.
    """
    key = f"{tenant}\x00{source}\x00{text_hash}\x00{occurrence}"
    return str(uuid.uuid5(CHUNK_NAMESPACE, key))


@dataclass(slots=True)
class _Group:
    """Texts that become one chunk, with where they sit and what they are made of."""

    section: str
    page: int | None
    texts: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Section:
    path: list[str] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)

    def enter(self, title: str, depth: int) -> None:
        while self.depths and self.depths[-1] >= depth:
            self.depths.pop()
            self.path.pop()
        self.path.append(title)
        self.depths.append(depth)

    def label(self) -> str:
        return " > ".join(self.path)


class StructureChunker:
    """Packs elements into section-bounded chunks of bounded size."""

    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        self._size = chunk_size
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        )

    def _pieces(self, element: Element) -> list[str]:
        text = element.text.strip()
        if len(text) <= self._size or element.kind == "CodeSnippet":
            return [text] if text else []
        if element.kind == "Table":
            return self._table_parts(text)
        return [piece for piece in self._splitter.split_text(text) if piece.strip()]

    def _table_parts(self, table: str) -> list[str]:
        """A long table cut between rows, each part led by the header row (never mid-row)."""
        header, *rows = table.splitlines()
        parts: list[list[str]] = [[]]
        for row in rows:
            size = len(header) + sum(len(r) + 1 for r in parts[-1])
            if parts[-1] and size + len(row) > self._size:
                parts.append([])
            parts[-1].append(row)
        return ["\n".join([header, *part]) for part in parts]

    def chunk(
        self,
        document: ParsedDocument,
        tenant: str = DEFAULT_TENANT,
        access_groups: tuple[str, ...] = (),
    ) -> list[Chunk]:
        """The document's chunks, owned by `tenant` and readable by `access_groups`."""
        groups: list[_Group] = []
        section = _Section()
        current = _Group("", None)

        def flush() -> None:
            nonlocal current
            if current.texts:
                groups.append(current)
            current = _Group(section.label(), None)

        for element in document.elements:
            if element.kind in _TITLE_KINDS:
                flush()
                section.enter(element.text.strip(), element.depth)
                current = _Group(section.label(), None)
                continue
            for piece in self._pieces(element):
                size = sum(len(t) + 2 for t in current.texts)
                starts_new = element.kind in _WHOLE_KINDS or len(piece) > self._size
                if current.texts and (size + len(piece) > self._size or starts_new):
                    flush()
                if not current.texts:
                    current = _Group(section.label(), element.page)
                current.texts.append(piece)
                current.kinds.add(element.kind)
                if element.kind in _WHOLE_KINDS:
                    flush()
        flush()
        if not groups and section.path:  # only titles (a cover page, a slide title): keep them
            groups.append(
                _Group("", document.elements[0].page, ["\n".join(section.path)], {"Title"})
            )
        return self._to_chunks(document, groups, tenant, access_groups)

    def _to_chunks(
        self,
        document: ParsedDocument,
        groups: list[_Group],
        tenant: str,
        access_groups: tuple[str, ...],
    ) -> list[Chunk]:
        seen: Counter[str] = Counter()
        chunks = []
        for index, group in enumerate(groups):
            text = "\n\n".join(group.texts)
            digest = content_hash(text)
            chunks.append(
                Chunk(
                    id=chunk_id(document.source, digest, seen[digest], tenant),
                    source=document.source,
                    text=text,
                    title=document.title,
                    section=group.section,
                    page=group.page,
                    index=index,
                    content_hash=digest,
                    metadata={"element_types": sorted(group.kinds)},
                    tenant=tenant,
                    access_groups=access_groups,
                )
            )
            seen[digest] += 1
        return chunks
