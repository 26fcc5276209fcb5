"""Index tuning both adapters apply: HNSW, quantization, storage placement, the tenant index.

`IndexTuning` is read from `StoreSettings` once; each adapter translates it into its
client's types. Creation-time settings (`recorded()`) are fixed when a collection is
built; a collection found with other ones is *drift*: reported at start-up, naming each
difference, and used as built (`on_drift=warn`) or refused (`on_drift=error`). Payload
indexes (the tenant index among them) are created or upgraded at start-up instead, and
query-time settings (`hnsw_ef`, rescore, oversampling) apply to every query.
See docs/adr/0025-production-topology.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

from core.errors import SchemaMismatchError
from core.settings import StoreSettings

log = logging.getLogger(__name__)

Quantization: TypeAlias = Literal["none", "int8", "binary"]
OnDrift: TypeAlias = Literal["warn", "error"]
Setting: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class IndexTuning:
    """How a collection is indexed and searched; the defaults are `StoreSettings`'."""

    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_ef: int | None = 128
    full_scan_threshold_kb: int = 10_000
    quantization: Quantization = "none"
    quantization_always_ram: bool = True
    rescore: bool = True
    oversampling: float = 2.0
    on_disk_vectors: bool = False
    on_disk_payload: bool = True
    tenant_index: bool = True
    on_drift: OnDrift = "warn"

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> IndexTuning:
        return cls(
            hnsw_m=settings.hnsw_m,
            hnsw_ef_construct=settings.hnsw_ef_construct,
            hnsw_ef=settings.hnsw_ef,
            full_scan_threshold_kb=settings.hnsw_full_scan_threshold_kb,
            quantization=settings.quantization,
            quantization_always_ram=settings.quantization_always_ram,
            rescore=settings.quantization_rescore,
            oversampling=settings.quantization_oversampling,
            on_disk_vectors=settings.on_disk_vectors,
            on_disk_payload=settings.on_disk_payload,
            tenant_index=settings.tenant_index,
            on_drift=settings.on_drift,
        )

    def recorded(self) -> dict[str, Setting]:
        """The creation-time settings, as a collection records and is compared by."""
        return {
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construct": self.hnsw_ef_construct,
            "quantization": self.quantization,
            "on_disk_vectors": self.on_disk_vectors,
        }

    def as_built(self, found: Mapping[str, Setting]) -> IndexTuning:
        """These settings with the creation-time ones a collection was built with: what
        a drifted collection is opened with, so the engine does not re-tune it."""
        fields = self.recorded()
        return replace(self, **{k: v for k, v in found.items() if k in fields})  # type: ignore[arg-type]


#: What a collection built before tuning was recorded holds: the engine's defaults.
ENGINE_DEFAULTS: dict[str, Setting] = IndexTuning().recorded()


@dataclass(frozen=True, slots=True)
class Difference:
    """One setting a collection was built with that the configuration does not ask for."""

    name: str
    configured: Setting
    found: Setting

    def __str__(self) -> str:
        return f"{self.name}: configured {self.configured!r}, collection has {self.found!r}"


def differences(
    configured: Mapping[str, Setting], found: Mapping[str, Setting]
) -> list[Difference]:
    """The configured settings the collection does not have (a name it does not record
    is not compared: the engine cannot say, so it is not drift)."""
    return [
        Difference(name, value, found[name])
        for name, value in configured.items()
        if name in found and found[name] != value
    ]


def report_drift(collection: str, found: list[Difference], on_drift: OnDrift) -> None:
    """Say which settings differ and how to apply them; refuse to start when asked to.

    A warning by default: a collection tuned otherwise still answers correctly (vector
    size and distance are checked separately, and refuse), so a rolling deploy must not
    take every replica out of service over an HNSW parameter."""
    if not found:
        return
    message = (
        f"collection {collection!r} was built with other index settings than configured "
        f"({'; '.join(str(d) for d in found)}). It is used as built. To apply the "
        "configured ones, re-index into a new collection (`rag reindex PATH` switches the "
        "alias when done), or set the RAG_STORE__* values back; "
        "RAG_STORE__ON_DRIFT=error refuses to start instead"
    )
    if on_drift == "error":
        raise SchemaMismatchError(message.replace("It is used as built. ", ""))
    log.warning(message)
