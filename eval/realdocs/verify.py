"""Check eval/realdocs/questions.jsonl against a built corpus.

Usage:
    python eval/realdocs/verify.py CORPUS_DIR [--dump TEXT_DIR]

For every answerable question, each string in `answers` must occur verbatim (case-
insensitive, whitespace-normalised) in the plain text of its `source` document; a
question failing that is listed and the exit status is 1. Off-corpus questions
(`answers: []`, `source: null`) are listed with the documents that contain all their
key terms, for a human to confirm that none answers them.

Plain text: HTML through a tag stripper (html.parser, script/style dropped), PDF
through pdfminer.six (run with the project's .venv), anything else read as UTF-8.
`--dump` writes those texts out, one .txt per document, for writing new questions.
"""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

QUESTIONS = Path(__file__).with_name("questions.jsonl")
#: Words too common to count as a question's key terms.
_STOP_WORDS = (
    "a an the of to in on for is are do does what which how who when why with by "
    "i my can it its and or be as at from that this use used you your"
)
_STOP = frozenset(_STOP_WORDS.split())


class _Stripper(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "dt", "dd", "pre"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(path: Path) -> str:
    if path.suffix == ".html":
        stripper = _Stripper()
        stripper.feed(path.read_text(encoding="utf-8", errors="replace"))
        return "".join(stripper.parts)
    if path.suffix == ".pdf":
        from pdfminer.high_level import extract_text

        return extract_text(str(path))
    return path.read_text(encoding="utf-8", errors="replace")


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 4):
        print(__doc__.split("Usage:")[1].split("\n\n")[0].strip())
        return 2
    corpus = Path(argv[1])
    texts = {p.name: plain_text(p) for p in sorted(corpus.iterdir()) if p.is_file()}
    if len(argv) == 4:
        dump = Path(argv[3])
        dump.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (dump / f"{name}.txt").write_text(text, encoding="utf-8")
    normed = {name: norm(text) for name, text in texts.items()}
    failures, answerable, off = 0, 0, 0
    for line_no, line in enumerate(QUESTIONS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        q = json.loads(line)
        if not q["answers"]:
            off += 1
            terms = [w for w in re.findall(r"[\w.-]+", q["question"].casefold()) if w not in _STOP]
            hits = [n for n, t in normed.items() if terms and all(w in t for w in terms)]
            print(f"off-corpus {line_no}: {q['question']}  (all terms in: {hits or 'none'})")
            continue
        answerable += 1
        source_text = normed.get(q["source"])
        if source_text is None:
            print(f"FAIL {line_no}: source {q['source']!r} not in the corpus")
            failures += 1
            continue
        missing = [a for a in q["answers"] if norm(a) not in source_text]
        if missing:
            print(f"FAIL {line_no}: {q['question']} -- not found in {q['source']}: {missing}")
            failures += 1
    print(f"{answerable} answerable ({failures} failing), {off} off-corpus")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
