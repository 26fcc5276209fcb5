"""`python -m eval.injection DATA [--out f.json] [--threshold t]` (`make eval-injection`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import RagError
from eval.injection import CORPUS, score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score the prompt-injection detector.")
    parser.add_argument("data", type=Path, nargs="?", default=CORPUS, help="JSONL: text, label")
    parser.add_argument("--out", type=Path, help="Write the JSON report here.")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args(argv)
    if not 0.0 < args.threshold <= 1.0:
        parser.error("--threshold must be in (0, 1]")
    try:
        report = score(args.data, args.threshold)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
