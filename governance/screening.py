"""Screening passages for prompt injection, at ingest and at retrieval, per policy.

The detector (`governance.injection`) scores how much a passage reads like instructions to
a model. Screening applies RAG_GOVERNANCE__INJECTION:

- `flag`: the chunk keeps flowing, marked (`metadata["injection"]` = its score). The prompt
  fences it with a warning (`gateway.prompting.fence`), the audit record of the request
  names its source, and an ingest report counts it.
- `quarantine`: marked at ingest the same way, and never handed to a search result, an
  answer or a model at retrieval.
- `off`: neither.

Retrieval screens again rather than trusting the mark from ingest: an index built before
the detector (or under an older threshold) is screened as it is read, and a detector that
got better applies at once. It costs microseconds a passage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, Protocol

from core import telemetry
from core.types import Chunk, ScoredChunk

#: The chunk metadata key holding a flagged passage's score.
FLAG = "injection"


class Verdict(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def flagged(self) -> bool: ...


class Detector(Protocol):
    def check(self, text: str) -> Verdict: ...


class PassageScreen:
    def __init__(self, detector: Detector, policy: Literal["off", "flag", "quarantine"]) -> None:
        self._detector = detector
        self.policy = policy

    def mark(self, chunk: Chunk) -> Chunk:
        """The chunk, with its score in its metadata when the detector flags it."""
        if self.policy == "off":
            return chunk
        verdict = self._detector.check(chunk.text)
        if not verdict.flagged:  # (a mark from an older detector or threshold goes)
            if FLAG not in chunk.metadata:
                return chunk
            kept = {k: v for k, v in chunk.metadata.items() if k != FLAG}
            return dataclasses.replace(chunk, metadata=kept)
        return dataclasses.replace(
            chunk, metadata={**chunk.metadata, FLAG: round(verdict.score, 3)}
        )

    def hits(self, hits: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        """Retrieved passages under the policy: quarantined ones left out, flagged ones
        marked; the request's audit record names both."""
        if self.policy == "off":
            return list(hits)
        kept: list[ScoredChunk] = []
        flagged: list[str] = []
        for hit in hits:
            chunk = self.mark(hit.chunk)
            if FLAG in chunk.metadata:
                flagged.append(chunk.source)
                if self.policy == "quarantine":
                    continue
            kept.append(hit if chunk is hit.chunk else ScoredChunk(chunk, hit.score))
        if flagged and self.policy == "quarantine":
            telemetry.note(quarantined=sorted(set(flagged)))
        elif flagged:
            telemetry.note(flagged_passages=sorted(set(flagged)))
        return kept
