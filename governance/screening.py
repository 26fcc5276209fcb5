"""Screening passages for prompt injection, at ingest and at retrieval, per policy.

The detector (`governance.injection`) scores how much a passage reads like instructions to
a model. Screening applies RAG_GOVERNANCE__INJECTION:

- `flag`: the chunk keeps flowing, marked (`metadata["injection"]` = its score). The prompt
  fences it with a warning (`gateway.prompting.fence`), the audit record of the request
  names its source, and an ingest report counts it.
- `quarantine`: marked at ingest the same way, and never handed to a search result, an
  answer or a model at retrieval.
- `off`: neither.

Every screened chunk is stamped with the screen's `version` (the detector's rules and the
threshold). Retrieval trusts the stamp of the current version, so a search pays nothing
for passages screened at ingest, and screens a passage again when its stamp is missing or
old: an index built before the detector, or under another threshold or rule set, is
screened as it is read, with no re-index. (Screening costs ~0.4-0.7 ms a 600-character
chunk; re-screening five hits on every query would have added that to each search.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, Protocol

from core import telemetry
from core.types import Chunk, ScoredChunk

#: The chunk metadata key holding a flagged passage's score.
FLAG = "injection"
#: The chunk metadata key holding the version of the screen that last read it.
SCREENED = "screened"


class Verdict(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def flagged(self) -> bool: ...


class Detector(Protocol):
    def check(self, text: str) -> Verdict: ...


class PassageScreen:
    def __init__(
        self,
        detector: Detector,
        policy: Literal["off", "flag", "quarantine"],
        version: str = "",
    ) -> None:
        self._detector = detector
        self.policy = policy
        self.version = version  # "": never trust a stamp (every read screens again)

    def mark(self, chunk: Chunk) -> Chunk:
        """The chunk, with its score in its metadata when the detector flags it."""
        if self.policy == "off":
            return chunk
        if self.version and chunk.metadata.get(SCREENED) == self.version:
            return chunk  # screened by this very screen: its mark (or none) stands
        verdict = self._detector.check(chunk.text)
        if not (verdict.flagged or self.version or FLAG in chunk.metadata):
            return chunk  # nothing to mark, nothing to stamp, nothing stale
        metadata = {k: v for k, v in chunk.metadata.items() if k != FLAG}  # an old mark goes
        if verdict.flagged:
            metadata[FLAG] = round(verdict.score, 3)
        if self.version:
            metadata[SCREENED] = self.version
        return dataclasses.replace(chunk, metadata=metadata)

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
