"""Print the installed distributions that the project does not need at run time.

`requirements.lock` holds the `dev` extra too (pytest, mypy, ruff, locust, playwright...).
The image installs the whole lock, so it runs the exact versions a laptop tests, then
removes what this script prints: every distribution that the project's dependencies in
`pyproject.toml` (no extras), followed through the installed metadata with markers and
extras evaluated for this interpreter, never reach. The build tools that made the venv
(uv) are not reached either. It reads pyproject.toml rather than the installed project so
that the image can drop the dev tools before the code is copied (a layer that code
changes do not rebuild).

    python infra/docker/dev_only.py pyproject.toml [--keep pip]
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def _wanted(marker: Marker | None, extras: frozenset[str]) -> bool:
    """A requirement applies when its marker holds for no extra or one requested extra."""
    if marker is None:
        return True
    return any(marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def runtime_closure(requirements: list[str]) -> set[str]:
    """Canonical names of the installed distributions that `requirements` need."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [
        (canonicalize_name(req.name), frozenset(req.extras))
        for req in map(Requirement, requirements)
        if _wanted(req.marker, frozenset())
    ]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = installed.get(name)
        if dist is None:
            raise SystemExit(f"{name} is required but not installed: the lock is incomplete")
        for line in dist.requires or []:
            req = Requirement(line)
            if _wanted(req.marker, extras):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", help="the project's pyproject.toml")
    parser.add_argument("--keep", action="append", default=[], help="never print this one")
    args = parser.parse_args(argv)
    with open(args.pyproject, "rb") as file:
        project = tomllib.load(file)["project"]
    keep = {canonicalize_name(name) for name in [project["name"], *args.keep]}
    needed = runtime_closure(project["dependencies"]) | keep
    names = sorted({canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()})
    print("\n".join(n for n in names if n not in needed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
