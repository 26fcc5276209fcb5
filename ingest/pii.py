"""Optional PII redaction at ingest, on presidio-analyzer's pattern recognizers.

Checksummed or structured identifiers (emails, phone numbers, credit cards with Luhn,
IBANs with their check digits, US SSNs) are found with presidio's recognizers and
replaced by `<ENTITY_TYPE>` before chunking, so they never reach the embeddings, the
index or an answer. Offline: presidio's own email recognizer validates domains with
tldextract, which downloads the public-suffix list at run time, so email uses a plain
pattern here; the NLP engine is the packaged spaCy `en_core_web_sm`. See ADR 0010.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from core.settings import PII_ENTITIES

DEFAULT_ENTITIES = PII_ENTITIES
_EMAIL = r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"


class PiiRedactor:
    """Replaces detected PII spans with their entity type; the engine loads on first use."""

    def __init__(
        self,
        entities: Sequence[str] = DEFAULT_ENTITIES,
        min_score: float = 0.4,
        sources: Sequence[str] = ("*",),
        phone_regions: Sequence[str] = ("US", "GB", "DE", "FR"),
    ) -> None:
        self._entities = list(entities)
        self._min_score = min_score
        self._sources = list(sources)
        self._regions = tuple(phone_regions)
        self._engine: Any = None

    def applies_to(self, source: str) -> bool:
        """Redaction is configured per source, by glob (e.g. `hr/*`, `*.eml`)."""
        return any(fnmatch.fnmatch(source, pattern) for pattern in self._sources)

    def __getstate__(self) -> dict[str, Any]:  # parse workers build their own engine
        return {**self.__dict__, "_engine": None}

    def _analyzer(self) -> Any:
        if self._engine is None:
            from presidio_analyzer import (
                AnalyzerEngine,
                Pattern,
                PatternRecognizer,
                RecognizerRegistry,
            )
            from presidio_analyzer.nlp_engine import NlpEngineProvider
            from presidio_analyzer.predefined_recognizers import (
                CreditCardRecognizer,
                IbanRecognizer,
                PhoneRecognizer,
                UsSsnRecognizer,
            )

            registry = RecognizerRegistry(supported_languages=["en"])
            for recognizer in (
                PatternRecognizer(
                    supported_entity="EMAIL_ADDRESS", patterns=[Pattern("email", _EMAIL, 0.9)]
                ),
                PhoneRecognizer(supported_regions=self._regions),
                CreditCardRecognizer(),
                IbanRecognizer(),
                UsSsnRecognizer(),
            ):
                registry.add_recognizer(recognizer)
            nlp = NlpEngineProvider(
                nlp_configuration={
                    "nlp_engine_name": "spacy",
                    "models": [{"lang_code": "en", "model_name": "en_core_web_sm"}],
                }
            ).create_engine()
            self._engine = AnalyzerEngine(
                registry=registry, nlp_engine=nlp, supported_languages=["en"]
            )
        return self._engine

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(entity, start, end) of every PII span, overlaps resolved to the longest."""
        results = self._analyzer().analyze(
            text=text, language="en", entities=self._entities, score_threshold=self._min_score
        )
        spans = sorted(
            ((r.entity_type, r.start, r.end) for r in results), key=lambda s: (s[1], -(s[2] - s[1]))
        )
        kept: list[tuple[str, int, int]] = []
        for span in spans:
            if not kept or span[1] >= kept[-1][2]:
                kept.append(span)
        return kept

    def redact(self, text: str) -> str:
        for entity, start, end in reversed(self.find(text)):
            text = f"{text[:start]}<{entity}>{text[end:]}"
        return text
