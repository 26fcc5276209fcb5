"""What a model reads for a chunk: the one text the embedder (ingest side) and the
cross-encoder (query side) both score, and the option terms BM25 indexes on both sides,
so neither side has to import the other."""

from __future__ import annotations

import re

from core.types import Chunk


def embedding_text(chunk: Chunk) -> str:
    """What the models see: the document title and section give a chunk its context."""
    heading = " > ".join(part for part in (chunk.title, chunk.section) if part)
    return f"{heading}\n{chunk.text}" if heading else chunk.text


#: A command-line option: a dash or two, then a letter ("-i", "--in-place"; not "-5",
#: which is as often a negative number, nor the "-2" of "IL-2").
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][A-Za-z0-9-]*")


def options(text: str) -> list[str]:
    """The options a text names, as written ("-J", "--in-place")."""
    return _OPTION.findall(text)


def option_terms(text: str) -> str:
    """Only the option terms of a text ("opti optinplace"), for a keyword query."""
    return " ".join(sorted({"opt" + o.replace("-", "").lower() for o in options(text)}))


def with_options(text: str) -> str:
    """The text plus one searchable term per command-line option it names: BM25's
    tokenizer drops the dashes, so "-i" would be the stopword "i" and "--in-place" two
    common words. "-i" adds "opti", "--in-place" adds "optinplace", on both sides."""
    options = option_terms(text)
    return f"{text} {options}" if options else text
