"""Build the "realdocs" evaluation corpus from documentation installed by Debian packages.

The corpus is ~23 real documents that nobody on this project wrote: manuals, man pages,
specifications and READMEs, produced by the generators people really have (texinfo /
makeinfo HTML, DocBook XSL, Sphinx, the Node.js doc tool, hand-written HTML, man pages
rendered by man-db/groff, PDF manuals from LaTeX/texinfo/DocBook, Markdown with YAML
front matter or MyST directives, raw info files). It measures parsing, answers and
abstention on messy input (navigation links, tables of contents, indexes, option lists,
page headers) with `eval/realdocs/questions.jsonl`.

Usage:
    python eval/realdocs/build.py OUTDIR

Every document is copied (gunzipped where the package ships it compressed) or rendered
into OUTDIR, a flat folder, under a stable name whose suffix the ingester supports
(.html, .txt, .md, .pdf). A source missing on this machine is skipped with a warning;
the build never fails as a whole. The corpus is not committed: build it where needed.
Standard library only (plus the `man` or `groff` command for man pages).

Licences: only documents whose licence allows redistribution are used (GPL, GFDL
without invariant sections, LGPL, MIT/Expat, BSD-style, Apache-2.0, X11-style
permissive). Each entry of MANIFEST names its Debian package and licence, as stated
in /usr/share/doc/<package>/copyright or in the document itself.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

DOC = "/usr/share/doc"

#: output name -> how to produce it. kind: copy (gunzip when the source ends in .gz),
#: man (render a man page to plain text), info (an info file, gunzipped, as text).
MANIFEST: dict[str, dict[str, str]] = {
    # --- texinfo HTML, one node per page, "Next: / Previous: / Up:" navigation ---------
    "libffi-the-basics.html": {
        "kind": "copy", "source": f"{DOC}/libffi8/html/The-Basics.html",
        "package": "libffi8", "licence": "Expat (MIT)", "generator": "texinfo HTML (node)",
    },
    "libffi-primitive-types.html": {
        "kind": "copy", "source": f"{DOC}/libffi8/html/Primitive-Types.html",
        "package": "libffi8", "licence": "Expat (MIT)", "generator": "texinfo HTML (node)",
    },
    "libffi-size-and-alignment.html": {
        "kind": "copy", "source": f"{DOC}/libffi8/html/Size-and-Alignment.html",
        "package": "libffi8", "licence": "Expat (MIT)", "generator": "texinfo HTML (node)",
    },
    "libffi-closure-api.html": {
        "kind": "copy", "source": f"{DOC}/libffi8/html/The-Closure-API.html",
        "package": "libffi8", "licence": "Expat (MIT)", "generator": "texinfo HTML (node)",
    },
    # --- texinfo HTML, whole manual on one page (TOC + index) ---------------------------
    "gnu-time-manual.html": {
        "kind": "copy", "source": f"{DOC}/time/time.html",
        "package": "time", "licence": "GFDL-1.3+ (no invariant sections)",
        "generator": "texinfo HTML (single page)",
    },
    # --- DocBook HTML (DSSSL and XSL stylesheets) --------------------------------------
    "base-passwd-users-and-groups.html": {
        "kind": "copy", "source": f"{DOC}/base-passwd/users-and-groups.html",
        "package": "base-passwd", "licence": "GPL-2",
        "generator": "DocBook DSSSL HTML (Modular DocBook HTML Stylesheet 1.79)",
    },
    "ninja-manual.html": {
        "kind": "copy", "source": f"{DOC}/ninja-build/manual.html",
        "package": "ninja-build", "licence": "Apache-2.0",
        "generator": "AsciiDoc -> DocBook XSL HTML",
    },
    # --- Sphinx -------------------------------------------------------------------------
    "debian-python-policy.html": {
        "kind": "copy", "source": f"{DOC}/python3/python-policy.html",
        "package": "python3", "licence": "GPL-2+", "generator": "Sphinx (singlehtml)",
    },
    # --- other generated / hand-written HTML -------------------------------------------
    "nodejs-path.html": {
        "kind": "copy", "source": f"{DOC}/nodejs/api/path.html",
        "package": "nodejs", "licence": "MIT", "generator": "Node.js doc tool HTML (sidebar nav)",
    },
    "socat.html": {
        "kind": "copy", "source": f"{DOC}/socat/socat.html",
        "package": "socat", "licence": "GPL-2", "generator": "yodl-generated HTML (man page)",
    },
    # --- man pages rendered to plain text ----------------------------------------------
    "sed.1.txt": {"kind": "man", "source": "sed", "package": "sed", "licence": "GPL-3+",
                  "generator": "man page (help2man) via man-db"},
    "grep.1.txt": {"kind": "man", "source": "grep", "package": "grep", "licence": "GPL-3+",
                   "generator": "man page via man-db"},
    "tar.1.txt": {"kind": "man", "source": "tar", "package": "tar", "licence": "GPL-3+",
                  "generator": "man page via man-db"},
    "find.1.txt": {"kind": "man", "source": "find", "package": "findutils", "licence": "GPL-3+",
                   "generator": "man page via man-db"},
    "ssh.1.txt": {"kind": "man", "source": "ssh", "package": "openssh-client",
                  "licence": "BSD-style (OpenSSH)", "generator": "man page (mdoc) via man-db"},
    "gzip.1.txt": {"kind": "man", "source": "gzip", "package": "gzip",
                   "licence": "FSF-manpages (permissive)", "generator": "man page via man-db"},
    # --- PDF manuals with a table of contents and/or index -----------------------------
    "bzip2-manual.pdf": {
        "kind": "copy", "source": f"{DOC}/bzip2/manual.pdf.gz",
        "package": "bzip2", "licence": "BSD-variant", "generator": "PDF (DocBook -> TeX)",
    },
    "shared-mime-info-spec.pdf": {
        "kind": "copy", "source": f"{DOC}/shared-mime-info/shared-mime-info-spec.pdf",
        "package": "shared-mime-info", "licence": "GPL-2+", "generator": "PDF (DocBook)",
    },
    "libtasn1-manual.pdf": {
        "kind": "copy", "source": f"{DOC}/libtasn1-doc/libtasn1.pdf",
        "package": "libtasn1-doc", "licence": "GFDL-1.3+ (no invariant sections)",
        "generator": "PDF (texinfo -> TeX, with index)",
    },
    # --- Markdown -----------------------------------------------------------------------
    "systemd-uids-gids.md": {
        "kind": "copy", "source": f"{DOC}/systemd/UIDS-GIDS.md.gz",
        "package": "systemd", "licence": "LGPL-2.1+", "generator": "Markdown (YAML front matter)",
    },
    "pip-caching.md": {
        "kind": "copy", "source": f"{DOC}/python3-pip/html/topics/caching.md.gz",
        "package": "python3-pip", "licence": "Expat (MIT)",
        "generator": "Markdown (MyST directives)",
    },
    "zstd-readme.md": {
        "kind": "copy", "source": f"{DOC}/zstd/README.md.gz",
        "package": "zstd", "licence": "BSD-3-clause or GPL-2",
        "generator": "Markdown (GitHub README)",
    },
    # --- a raw info file (makeinfo's plain-text output, ^_ node separators) ------------
    "bc.info.txt": {
        "kind": "info", "source": "/usr/share/info/bc.info.gz",
        "package": "bc", "licence": "GPL-2+ (manual: GPL-2+/permissive notice)",
        "generator": "info file (makeinfo)",
    },
}  # fmt: skip

_OVERSTRIKE = re.compile(r".\x08")  # bold/underline as "c\bc" / "_\bc"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _read_maybe_gz(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _plain(text: str) -> str:
    """Man output without overstrikes or colour codes, one trailing newline."""
    return _ANSI.sub("", _OVERSTRIKE.sub("", text)).rstrip() + "\n"


def render_man(page: str) -> str | None:
    """Plain-text rendering at 80 columns: man-db first, else groff on the page's source."""
    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    env.pop("MAN_KEEP_FORMATTING", None)  # keep bold/underline out of the text
    if shutil.which("man"):
        done = subprocess.run(["man", "-P", "cat", page], env=env, capture_output=True,
                              text=True, check=False)  # fmt: skip
        if done.returncode == 0 and done.stdout.strip():
            return _plain(done.stdout)
    if shutil.which("groff"):
        for section in ("1", "8"):
            source = Path(f"/usr/share/man/man{section}/{page}.{section}.gz")
            if source.exists():
                rendered = subprocess.run(
                    ["groff", "-mandoc", "-Tutf8", "-rLL=80n", "-P-cbou"],
                    input=gzip.decompress(source.read_bytes()), capture_output=True, check=False,
                    env=env,
                )  # fmt: skip
                if rendered.returncode == 0 and rendered.stdout.strip():
                    return _plain(rendered.stdout.decode("utf-8", "replace"))
    return None


def build_one(name: str, entry: dict[str, str], outdir: Path) -> bool:
    kind, source = entry["kind"], entry["source"]
    if kind == "man":
        text = render_man(source)
        if text is None:
            print(f"warning: {name}: man page {source!r} not found or not renderable; skipped")
            return False
        (outdir / name).write_text(text, encoding="utf-8")
        return True
    path = Path(source)
    if not path.is_file():
        print(f"warning: {name}: {source} is missing on this machine; skipped")
        return False
    try:
        data = _read_maybe_gz(path)
    except (OSError, gzip.BadGzipFile, EOFError) as exc:
        print(f"warning: {name}: cannot read {source} ({exc}); skipped")
        return False
    (outdir / name).write_bytes(data)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("Usage:")[1].split("\n\n")[0].strip())
        return 2
    outdir = Path(argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    built = 0
    for name, entry in MANIFEST.items():
        try:
            ok = build_one(name, entry, outdir)
        except Exception as exc:  # noqa: BLE001 - one odd source never stops the corpus
            print(f"warning: {name}: {type(exc).__name__}: {exc}; skipped")
            ok = False
        if ok:
            built += 1
            size = (outdir / name).stat().st_size
            print(f"{name:40} {size / 1024:8.1f} KiB  {entry['generator']}  [{entry['licence']}]")
    total = sum(p.stat().st_size for p in outdir.iterdir() if p.name in MANIFEST)
    print(f"{built}/{len(MANIFEST)} documents in {outdir} ({total / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
