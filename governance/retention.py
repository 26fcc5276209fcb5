"""Retention: documents, uploads, cached answers, audit records and cost rows expire by age.

`RetentionSettings` says how many days each kind is kept (unset: for ever). `Retention.run`
applies them once (`rag retention run`); `RetentionSchedule` runs it every `interval_h`
hours in a `rag serve` or `rag worker` process. Documents expire by the time they were
last ingested and are erased like a DELETE (chunks, manifest row, cached answers, uploaded
copy); the caller records what went in the audit trail.

Everything is optional: a deployment without the LLM has no answer cache, one without the
audit trail no records to cut. The parts are passed in (ports), so this module never
reaches into the surfaces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from core.settings import RetentionSettings

log = logging.getLogger(__name__)


class Documents(Protocol):
    def expired(self, before: datetime) -> list[tuple[str, str]]: ...

    def delete(self, tenant: str, source: str, groups: None = None) -> bool: ...


class Purgeable(Protocol):
    """Something that forgets what it holds from before a moment; says how much."""

    def purge_before(self, moment: datetime) -> int: ...


@dataclass
class RetentionReport:
    """What one run removed."""

    documents: list[tuple[str, str]] = field(default_factory=list)
    uploads: int = 0
    cache_entries: int = 0
    audit_records: int = 0
    ledger_rows: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "documents_erased": len(self.documents),
            "uploads": self.uploads,
            "cache_entries": self.cache_entries,
            "audit_records": self.audit_records,
            "ledger_rows": self.ledger_rows,
        }


def purge_uploads(folder: Path, before: datetime) -> int:
    """Uploaded files older than `before` (copies a job never finished with), then the
    job folders they leave empty."""
    if not folder.is_dir():
        return 0
    cutoff = before.timestamp()
    removed = 0
    for path in sorted(folder.rglob("*"), reverse=True):  # files before their folders
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
            elif path.is_dir() and path.parent != folder and not any(path.iterdir()):
                path.rmdir()  # an emptied job folder (tenant folders stay)
        except OSError as exc:  # a job removed it meanwhile, or a permission: go on
            log.warning("retention: could not remove %s: %s", path, exc)
    return removed


class Retention:
    """One retention policy over the parts a deployment has."""

    def __init__(
        self,
        settings: RetentionSettings,
        *,
        documents: Documents | None = None,
        uploads: Path | None = None,
        cache: Purgeable | None = None,
        audit: Purgeable | None = None,
        ledger: Purgeable | None = None,
    ) -> None:
        self._settings = settings
        self._documents = documents
        self._uploads = uploads
        self._cache = cache
        self._audit = audit
        self._ledger = ledger

    def run(self, now: datetime | None = None) -> RetentionReport:
        now = now or datetime.now(UTC)
        s = self._settings
        report = RetentionReport()

        def before(days: float | None) -> datetime | None:
            return None if days is None else now - timedelta(days=days)

        if (cutoff := before(s.documents_days)) and self._documents is not None:
            for tenant, source in self._documents.expired(cutoff):
                if self._documents.delete(tenant, source):
                    report.documents.append((tenant, source))
        if (cutoff := before(s.uploads_days)) and self._uploads is not None:
            report.uploads = purge_uploads(self._uploads, cutoff)
        if (cutoff := before(s.cache_days)) and self._cache is not None:
            report.cache_entries = self._cache.purge_before(cutoff)
        if (cutoff := before(s.audit_days)) and self._audit is not None:
            report.audit_records = self._audit.purge_before(cutoff)
        if (cutoff := before(s.ledger_days)) and self._ledger is not None:
            report.ledger_rows = self._ledger.purge_before(cutoff)
        return report


class RetentionSchedule:
    """Runs `job` every `interval_h` hours on a daemon thread until `stop()`; a failing
    run is logged and the next one still comes."""

    def __init__(self, job: Callable[[], object], interval_h: float) -> None:
        self._job = job
        self._interval_s = interval_h * 3600
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        next_run = time.monotonic()
        while not self._stop.wait(max(0.0, next_run - time.monotonic())):
            try:
                self._job()
            except Exception:
                log.exception("retention run failed; the next one is in %.0f s", self._interval_s)
            next_run = time.monotonic() + self._interval_s

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
