"""Cross-encoder reranking with fastembed's `TextCrossEncoder` (ONNX, no torch).

A cross-encoder reads query and passage together, so it ranks better than the
bi-encoder that retrieved them, at a cost per candidate. Off by default: no
cross-encoder is packaged on PyPI, and the template never downloads at run time
unless told to (RAG_RERANK__ALLOW_DOWNLOAD=true).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import ModelUnavailableError
from core.settings import RerankSettings
from core.text import embedding_text
from core.types import ScoredChunk


class CrossEncoderReranker:
    """`Reranker` on fastembed's TextCrossEncoder."""

    def __init__(self, settings: RerankSettings, cache_dir: str) -> None:
        from fastembed.rerank.cross_encoder import TextCrossEncoder

        if settings.model is None:
            raise ModelUnavailableError("RAG_RERANK__MODEL is not set")
        kwargs: dict[str, Any] = {"cache_dir": cache_dir}
        if settings.model_path is not None:
            if not settings.model_path.is_dir():
                raise ModelUnavailableError(
                    f"RAG_RERANK__MODEL_PATH={settings.model_path} is not a folder"
                )
            kwargs["specific_model_path"] = str(settings.model_path)
        elif not settings.allow_download:
            raise ModelUnavailableError(
                f"reranker {settings.model!r} is not local: set RAG_RERANK__MODEL_PATH, or "
                "RAG_RERANK__ALLOW_DOWNLOAD=true and HF_HUB_OFFLINE=0 to let fastembed fetch it"
            )
        self._model = TextCrossEncoder(model_name=settings.model, **kwargs)
        self._name = settings.model

    @property
    def name(self) -> str:
        return self._name

    def rerank(self, query: str, hits: Sequence[ScoredChunk], top_k: int) -> list[ScoredChunk]:
        scores = list(self._model.rerank(query, [embedding_text(h.chunk) for h in hits]))
        ranked = sorted(zip(hits, scores, strict=True), key=lambda pair: -pair[1])
        return [ScoredChunk(hit.chunk, float(score)) for hit, score in ranked[:top_k]]
