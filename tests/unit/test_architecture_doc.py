"""docs/architecture.md's diagrams draw the real system: every box names code or infra.

Each Mermaid block ends with `%% code: NODE -> TARGET, TARGET` lines, one per node,
participant or boundary it declares. A target is
    py:dotted.path           a module, or a class, function, method, nested function or
                             assignment in it, found in the module's syntax tree (not
                             imported: no model loads, and a re-export does not count)
    file:path                a file of the repository
    compose:service          a service of infra/compose.yaml, read when the test runs
    k8s:Kind/name            a resource of a YAML file under infra/k8s
A node without a line, a line for no node, an arrow to an undeclared node, a target that
names nothing and a diagram line the parser does not understand are all failures.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from core.types import Rung
from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "architecture.md"
INFRA = PROJECT_ROOT / "infra"

_BLOCK = re.compile(r"^```mermaid\n(.*?)^```", re.M | re.S)
_MAPPING = re.compile(r"^%%\s*code:\s*(\w+)\s*->\s*(.+)$")
_IGNORED = re.compile(r"^(%%.*|title\s.*|autonumber|direction\s+\w+|(classDef|class|style)\s.*)$")

_C4_ELEMENT = re.compile(
    r"^(Person|System|SystemDb|SystemQueue|Container|ContainerDb|ContainerQueue"
    r"|Component|ComponentDb|ComponentQueue)(_Ext)?\(\s*(\w+)\s*,.*\)$"
)
_C4_BOUNDARY = re.compile(
    r"^(Boundary|Enterprise_Boundary|System_Boundary|Container_Boundary)\(\s*(\w+)\s*,.*\)\s*\{$"
)
_C4_REL = re.compile(
    r"^(Bi)?Rel(_(Up|Down|Left|Right|U|D|L|R|Back))?\(\s*(\w+)\s*,\s*(\w+)\s*,.*\)$"
)

_PARTICIPANT = re.compile(r"^(participant|actor)\s+(\w+)(\s+as\s+.+)?$")
_MESSAGE = re.compile(r"^(\w+)\s*--?(>>|>|x|\))[+-]?\s*(\w+)\s*:.*$")
_NOTE = re.compile(r"^Note\s+(over|left of|right of)\s+(\w+)(\s*,\s*(\w+))?\s*:.*$")
_ACTIVATION = re.compile(r"^(activate|deactivate)\s+(\w+)$")
_SEQUENCE_BLOCK = re.compile(r"^(loop|opt|alt|else|par|and|critical|option|break|rect)(\s.*)?$")

#: A node on a line of its own, with one quoted label: `id["..."]`, `id{"..."}`, `id(["..."])`.
_FLOW_NODE = re.compile(r'^(\w+)[\[({>]+"[^"]*"[\])}]+$')
_FLOW_EDGE = re.compile(r"^(\w+)\s*(-->|-\.->|==>|---)\s*(\|[^|]*\|)?\s*(\w+)$")
_SUBGRAPH = re.compile(r"^subgraph\s+(\w+).*$")


@dataclass
class Diagram:
    kind: str
    declared: list[str] = field(default_factory=list)
    referenced: set[str] = field(default_factory=set)
    mapping: dict[str, list[str]] = field(default_factory=dict)
    unparsed: list[str] = field(default_factory=list)


def parse(block: str) -> Diagram:
    """The nodes a Mermaid block declares and refers to, and its `%% code:` lines."""
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    if lines[0] == "---":  # front matter (a flowchart's title)
        lines = lines[lines.index("---", 1) + 1 :]
    header = next(line for line in lines if not line.startswith("%%"))
    diagram = Diagram(header.split()[0])
    for line in lines[lines.index(header) + 1 :]:
        mapped = _MAPPING.match(line)
        if mapped:
            node, targets = mapped.groups()
            diagram.mapping.setdefault(node, []).extend(t.strip() for t in targets.split(","))
        elif _IGNORED.match(line) or line in ("end", "}"):
            continue
        elif diagram.kind.startswith("C4"):
            _c4_line(diagram, line)
        elif diagram.kind == "sequenceDiagram":
            _sequence_line(diagram, line)
        elif diagram.kind in ("flowchart", "graph"):
            _flowchart_line(diagram, line)
        else:
            diagram.unparsed.append(line)
    return diagram


def _c4_line(diagram: Diagram, line: str) -> None:
    if element := _C4_ELEMENT.match(line):
        diagram.declared.append(element.group(3))
    elif boundary := _C4_BOUNDARY.match(line):
        diagram.declared.append(boundary.group(2))
    elif rel := _C4_REL.match(line):
        diagram.referenced |= {rel.group(4), rel.group(5)}
    elif not line.startswith("Update"):  # UpdateLayoutConfig(...) and friends
        diagram.unparsed.append(line)


def _sequence_line(diagram: Diagram, line: str) -> None:
    if participant := _PARTICIPANT.match(line):
        diagram.declared.append(participant.group(2))
    elif message := _MESSAGE.match(line):
        diagram.referenced |= {message.group(1), message.group(3)}
    elif note := _NOTE.match(line):
        diagram.referenced |= {n for n in (note.group(2), note.group(4)) if n}
    elif activation := _ACTIVATION.match(line):
        diagram.referenced.add(activation.group(2))
    elif not _SEQUENCE_BLOCK.match(line):
        diagram.unparsed.append(line)


def _flowchart_line(diagram: Diagram, line: str) -> None:
    if edge := _FLOW_EDGE.match(line):
        diagram.referenced |= {edge.group(1), edge.group(4)}
    elif subgraph := _SUBGRAPH.match(line):
        diagram.declared.append(subgraph.group(1))
    elif node := _FLOW_NODE.match(line):
        diagram.declared.append(node.group(1))
    else:
        diagram.unparsed.append(line)


def diagrams(markdown: str) -> list[Diagram]:
    return [parse(block) for block in _BLOCK.findall(markdown)]


# -- targets -------------------------------------------------------------------------


def _module_file(parts: list[str]) -> Path | None:
    base = PROJECT_ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _names(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """What a module, class or function body defines by name."""
    found: dict[str, ast.stmt] = {}
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[statement.name] = statement
        elif isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = statement
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            found[statement.target.id] = statement
    return found


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def python_target_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module = _module_file(parts[:split])
        if module is None:
            continue
        body: list[ast.stmt] = _tree(module).body
        for name in parts[split:]:
            found = _names(body).get(name)
            if found is None:
                return False
            body = getattr(found, "body", [])
        return True
    return False


@cache
def compose_services() -> frozenset[str]:
    document = yaml.safe_load((INFRA / "compose.yaml").read_text(encoding="utf-8"))
    return frozenset(document.get("services") or {})


@cache
def k8s_resources() -> frozenset[str]:
    resources = set()
    for path in sorted((INFRA / "k8s").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and "kind" in document:
                name = (document.get("metadata") or {}).get("name")
                if name:
                    resources.add(f"{document['kind']}/{name}")
    return frozenset(resources)


def target_exists(target: str) -> bool:
    kind, _, value = target.partition(":")
    if kind == "py":
        return python_target_exists(value)
    if kind == "file":
        path = (PROJECT_ROOT / value).resolve()
        return path.is_relative_to(PROJECT_ROOT) and path.is_file()
    if kind == "compose":
        return value in compose_services()
    if kind == "k8s":
        return value in k8s_resources()
    return False


def problems(markdown: str) -> Iterator[str]:
    """Every way the diagrams of `markdown` fail to name real code or infra."""
    for number, diagram in enumerate(diagrams(markdown), 1):
        where = f"diagram {number} ({diagram.kind})"
        for line in diagram.unparsed:
            yield f"{where}: line not understood: {line!r}"
        for node in sorted({n for n in diagram.declared if diagram.declared.count(n) > 1}):
            yield f"{where}: {node} is declared twice"
        for node in sorted(diagram.referenced - set(diagram.declared)):
            yield f"{where}: {node} is used but never declared"
        for node in diagram.declared:
            if not diagram.mapping.get(node):
                yield f"{where}: {node} has no '%% code: {node} -> ...' line"
        for node, targets in diagram.mapping.items():
            if node not in diagram.declared:
                yield f"{where}: a code line for {node}, which the diagram does not declare"
            for target in targets:
                if not target_exists(target):
                    yield f"{where}: {node} -> {target} names nothing in the code or infra/"


# -- the document --------------------------------------------------------------------


def test_every_diagram_node_names_real_code_or_infra() -> None:
    assert list(problems(DOC.read_text(encoding="utf-8"))) == []


def test_the_doc_has_the_c4_views_both_sequences_and_the_ladder() -> None:
    kinds = [d.kind for d in diagrams(DOC.read_text(encoding="utf-8"))]
    assert kinds == ["C4Context", "C4Container", "sequenceDiagram", "sequenceDiagram", "flowchart"]


def test_the_ladder_draws_every_rung() -> None:
    ladder = diagrams(DOC.read_text(encoding="utf-8"))[-1]
    targets = {t for targets in ladder.mapping.values() for t in targets}
    assert {f"py:core.types.Rung.{rung.name}" for rung in Rung} <= targets
    assert "py:core.types.Answer.not_found" in targets  # the bottom: "I don't know"


def test_every_diagram_line_of_the_doc_is_understood() -> None:
    parsed = diagrams(DOC.read_text(encoding="utf-8"))
    assert all(d.declared and d.mapping for d in parsed)
    assert sum(len(d.declared) for d in parsed) > 60


# -- the checker itself ---------------------------------------------------------------

_GOOD = """
```mermaid
flowchart LR
    ask["RagService.ask"]
    store[("Qdrant")]
    ask --> store
    %% code: ask -> py:retrieval.service.RagService.ask
    %% code: store -> compose:qdrant, py:store.remote.QdrantServerStore
```
"""


def test_a_diagram_of_real_things_passes() -> None:
    assert list(problems(_GOOD)) == []


@pytest.mark.parametrize(
    ("diagram", "complaint"),
    [
        pytest.param(
            """
```mermaid
flowchart LR
    oracle["Oracle"]
    %% code: oracle -> py:retrieval.oracle.Oracle
```""",
            "oracle -> py:retrieval.oracle.Oracle names nothing",
            id="a made-up module",
        ),
        pytest.param(
            """
```mermaid
sequenceDiagram
    participant service as RagService
    %% code: service -> py:retrieval.service.RagService.teleport
```""",
            "RagService.teleport names nothing",
            id="a made-up method of a real class",
        ),
        pytest.param(
            """
```mermaid
C4Container
    Container(cache, "Cache", "Memcached")
    %% code: cache -> compose:memcached
```""",
            "compose:memcached names nothing",
            id="a service compose does not run",
        ),
        pytest.param(
            """
```mermaid
C4Container
    Container(api, "API", "FastAPI")
    %% code: api -> k8s:Deployment/rag-gateway, file:infra/helm/Chart.yaml
```""",
            "k8s:Deployment/rag-gateway names nothing",
            id="a made-up Kubernetes resource",
        ),
        pytest.param(
            """
```mermaid
flowchart LR
    ask["RagService.ask"]
    oracle["Oracle"]
    ask --> oracle
    %% code: ask -> py:retrieval.service.RagService.ask
```""",
            "oracle has no '%% code: oracle -> ...' line",
            id="a node without a code line",
        ),
        pytest.param(
            """
```mermaid
sequenceDiagram
    participant service as RagService
    service->>oracle: ask
    %% code: service -> py:retrieval.service.RagService
```""",
            "oracle is used but never declared",
            id="an arrow to an undeclared participant",
        ),
        pytest.param(
            """
```mermaid
flowchart LR
    ask["RagService.ask"] --> oracle["Oracle"]
    %% code: ask -> py:retrieval.service.RagService.ask
```""",
            "line not understood",
            id="a line the parser cannot read",
        ),
        pytest.param(
            """
```mermaid
flowchart LR
    ask["RagService.ask"]
    %% code: ask -> py:retrieval.service.RagService.ask
    %% code: oracle -> py:retrieval.service
```""",
            "a code line for oracle, which the diagram does not declare",
            id="a code line for no node",
        ),
        pytest.param(
            """
```mermaid
flowchart LR
    ask["RagService.ask"]
    %% code: ask -> file:../etc/passwd
```""",
            "file:../etc/passwd names nothing",
            id="a file outside the repository",
        ),
    ],
)
def test_a_node_that_names_nothing_real_fails(diagram: str, complaint: str) -> None:
    found = list(problems(diagram))
    assert any(complaint in problem for problem in found), found
