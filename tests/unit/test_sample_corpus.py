"""The demo corpus is the docs' prose: Mermaid diagrams stay out of it, nothing else does."""

from __future__ import annotations

from pathlib import Path

from ingest.sample_corpus import build, without_diagrams
from tests.conftest import PROJECT_ROOT

_DOC = """# Title

Before the diagram.

```mermaid
flowchart LR
    A["a node"] --> B["another"]
    %% code: A -> py:core.types
```

Between.

```bash
make demo
```

```mermaid
sequenceDiagram
    participant x as X
```
After."""


def test_mermaid_blocks_are_dropped_and_other_code_blocks_kept() -> None:
    text = without_diagrams(_DOC)
    assert "mermaid" not in text
    assert "flowchart" not in text
    assert "participant" not in text
    assert "```bash\nmake demo\n```" in text
    assert [line for line in text.splitlines() if line.strip()] == [
        "# Title",
        "Before the diagram.",
        "Between.",
        "```bash",
        "make demo",
        "```",
        "After.",
    ]


def test_a_doc_without_diagrams_is_unchanged() -> None:
    source = (PROJECT_ROOT / "docs" / "adr" / "0001-embedded-vector-store.md").read_text()
    assert without_diagrams(source) == source


def test_the_rendered_architecture_notes_keep_the_prose_and_drop_the_diagrams(
    tmp_path: Path,
) -> None:
    source = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "```mermaid" in source  # the doc has diagrams to drop
    build(PROJECT_ROOT / "docs", tmp_path)
    rendered = (tmp_path / "architecture.md").read_text(encoding="utf-8")
    assert "```mermaid" not in rendered
    diagram_lines = ("%%", "participant ", "Rel(", "C4Container", "sequenceDiagram")
    assert not any(line.lstrip().startswith(diagram_lines) for line in rendered.splitlines())
    prose = [line for line in without_diagrams(source).splitlines() if line.strip()]
    assert [line for line in rendered.splitlines() if line.strip()] == prose
    assert "Each top-level package owns one concern" in rendered
