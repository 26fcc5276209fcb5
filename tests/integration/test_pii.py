"""PII redaction, measured on a labelled sample: precision and recall per entity type.

The sample mixes real-format identifiers (valid Luhn card numbers, IBANs with correct
check digits, phone numbers in national formats) with look-alikes that are not PII
(order numbers, dates, versions, prices), so both kinds of error can show.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from api.wiring import build_app_context
from core.settings import Settings
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pii import PiiRedactor
from ingest.pipeline import discover

pytestmark = pytest.mark.integration

#: (text, {(entity, value), ...}) — every PII value in the text, nothing else.
SAMPLE: list[tuple[str, set[tuple[str, str]]]] = [
    ("Contact jane.doe@example.com for access.", {("EMAIL_ADDRESS", "jane.doe@example.com")}),
    (
        "Escalate to ops-team+alerts@corp.example.org tonight.",
        {("EMAIL_ADDRESS", "ops-team+alerts@corp.example.org")},
    ),
    ("Call me at +1 415-555-0132 after lunch.", {("PHONE_NUMBER", "+1 415-555-0132")}),
    ("The London office is on 020 7946 0958.", {("PHONE_NUMBER", "020 7946 0958")}),
    ("Berlin desk: +49 30 901820.", {("PHONE_NUMBER", "+49 30 901820")}),
    ("Paid with 4111 1111 1111 1111 on Monday.", {("CREDIT_CARD", "4111 1111 1111 1111")}),
    ("Amex 3782 822463 10005 was declined.", {("CREDIT_CARD", "3782 822463 10005")}),
    ("Card number 5500-0000-0000-0004 expires soon.", {("CREDIT_CARD", "5500-0000-0000-0004")}),
    ("Wire to DE89 3704 0044 0532 0130 00 please.", {("IBAN_CODE", "DE89 3704 0044 0532 0130 00")}),
    ("UK account GB29 NWBK 6016 1331 9268 19.", {("IBAN_CODE", "GB29 NWBK 6016 1331 9268 19")}),
    ("Refund to FR1420041010050500013M02606.", {("IBAN_CODE", "FR1420041010050500013M02606")}),
    ("Employee SSN 536-90-4399 on file.", {("US_SSN", "536-90-4399")}),
    ("Applicant social security number 212-67-3456.", {("US_SSN", "212-67-3456")}),
    (
        "Send the invoice to billing@example.net and call 212-555-0187.",
        {("EMAIL_ADDRESS", "billing@example.net"), ("PHONE_NUMBER", "212-555-0187")},
    ),
    ("Order 12345 shipped on 2024-05-01.", set()),
    ("Upgrade to version 3.10.2 before Friday.", set()),
    ("The total was 1,299.00 EUR for 3 licenses.", set()),
    ("Ticket INC-20240501-77 is closed.", set()),
    ("Meeting room 4B holds 12 people.", set()),
    ("Revenue grew 12.5% to 4.2 million in Q3 2024.", set()),
]


def _measure(redactor: PiiRedactor) -> dict[str, dict[str, float]]:
    found: set[tuple[int, str, str]] = set()
    gold: set[tuple[int, str, str]] = set()
    for i, (text, expected) in enumerate(SAMPLE):
        gold |= {(i, entity, value) for entity, value in expected}
        found |= {(i, entity, text[start:end]) for entity, start, end in redactor.find(text)}
    scores: dict[str, dict[str, float]] = {}
    entities = sorted({g[1] for g in gold} | {f[1] for f in found})
    for entity in [*entities, "all"]:
        g = {x for x in gold if entity in ("all", x[1])}
        f = {x for x in found if entity in ("all", x[1])}
        hits = len(g & f)
        scores[entity] = {
            "precision": hits / len(f) if f else 1.0,
            "recall": hits / len(g) if g else 1.0,
            "gold": len(g),
        }
    return scores


def test_pattern_recognizers_are_precise_and_complete_on_the_labelled_sample() -> None:
    scores = _measure(PiiRedactor())
    print("\nPII redaction on the labelled sample:")
    for entity, score in scores.items():
        print(
            f"  {entity:14} precision {score['precision']:.2f} "
            f"recall {score['recall']:.2f} (n={score['gold']:.0f})"
        )
    assert scores["all"]["precision"] >= 0.9
    assert scores["all"]["recall"] >= 0.9


def test_redaction_replaces_spans_and_keeps_the_rest() -> None:
    redactor = PiiRedactor()
    assert redactor.redact("Mail jane.doe@example.com or call +1 415-555-0132.") == (
        "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>."
    )
    assert redactor.redact("Order 12345 shipped.") == "Order 12345 shipped."


def test_redaction_at_ingest_is_scoped_by_source(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "hr").mkdir(parents=True)
    (folder / "hr" / "contacts.md").write_text("# HR\n\nReach Dana at dana@example.com.\n")
    (folder / "public.md").write_text("# Public\n\nWrite to press@example.com.\n")
    settings.pii.enabled = True
    settings.pii.sources = ["hr/*"]
    ctx = build_app_context(settings)
    try:
        ctx.documents.ingest(
            discover(folder, SUPPORTED_SUFFIXES),
            folder,
        )
        hr = ctx.service.search("Dana", filters={"source": "hr/contacts.md"})[0].chunk.text
        public = ctx.service.search("press", filters={"source": "public.md"})[0].chunk.text
    finally:
        ctx.close()
    assert hr == "Reach Dana at <EMAIL_ADDRESS>."
    assert "press@example.com" in public
