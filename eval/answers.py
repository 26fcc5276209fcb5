"""Answer metrics: SQuAD-style EM/F1, answer-in-context, and ragas' no-LLM metrics.

ragas is imported lazily (it takes seconds) and with telemetry off. Its LLM-judged metrics
(faithfulness, answer relevancy...) need a judge model from the LLM gateway; until one is
configured, reports list them under `skipped` with the reason instead of inventing scores.
"""

from __future__ import annotations

import re
import string
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

from core.offline import apply_offline_defaults
from eval import eval_extra_missing

LLM_JUDGED = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(r) for r in references))


def f1(prediction: str, references: Sequence[str]) -> float:
    """Token-overlap F1 against the best reference (the official SQuAD v1.1 definition)."""
    best = 0.0
    predicted = normalize_answer(prediction).split()
    for reference in references:
        gold = normalize_answer(reference).split()
        common = Counter(predicted) & Counter(gold)
        overlap = sum(common.values())
        if overlap:
            precision, recall = overlap / len(predicted), overlap / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def string_present(prediction: str, references: Sequence[str]) -> float:
    """1.0 when any reference occurs in the answer, both normalised (SQuAD's rules), so
    case, punctuation and articles do not decide it."""
    answer = f" {normalize_answer(prediction)} "
    return float(
        any(normalize_answer(r) and f" {normalize_answer(r)} " in answer for r in references)
    )


def answer_in_context(references: Sequence[str], contexts: Sequence[str]) -> float:
    """1.0 when any reference answer occurs in the retrieved passages (normalised)."""
    haystack = normalize_answer(" ".join(contexts))
    return float(any(normalize_answer(r) and normalize_answer(r) in haystack for r in references))


class RagasScorer:
    """ragas' reference-based metrics that need no LLM, one sample at a time."""

    names = (
        "non_llm_context_recall",
        "non_llm_context_precision_with_reference",
        "rouge_score",
        "non_llm_string_similarity",
    )

    def __init__(self) -> None:
        apply_offline_defaults()
        try:
            from ragas.metrics.collections import NonLLMStringSimilarity, RougeScore
        except ImportError as exc:
            raise eval_extra_missing(exc) from exc

        with warnings.catch_warnings():
            # The context metrics have no ragas.metrics.collections version in 0.4.3 yet.
            warnings.simplefilter("ignore", DeprecationWarning)
            from ragas import SingleTurnSample
            from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

        self._sample = SingleTurnSample
        self._context_recall = NonLLMContextRecall()
        self._context_precision = NonLLMContextPrecisionWithReference()
        self._rouge = RougeScore()
        self._similarity = NonLLMStringSimilarity()

    def score(
        self,
        question: str,
        response: str,
        reference: str,
        contexts: Sequence[str],
        reference_contexts: Sequence[str],
    ) -> dict[str, float]:
        with warnings.catch_warnings():
            # ragas 0.4.3 builds an analytics event per score (even with tracking off) and
            # its user-id reader leaves ~/.local/share/ragas/uuid.json open.
            warnings.simplefilter("ignore", ResourceWarning)
            return self._score(question, response, reference, contexts, reference_contexts)

    def _score(
        self,
        question: str,
        response: str,
        reference: str,
        contexts: Sequence[str],
        reference_contexts: Sequence[str],
    ) -> dict[str, float]:
        scores: dict[str, float] = {}
        if reference_contexts and contexts:
            sample: Any = self._sample(
                user_input=question,
                response=response,
                retrieved_contexts=list(contexts),
                reference_contexts=list(reference_contexts),
            )
            scores["non_llm_context_recall"] = float(self._context_recall.single_turn_score(sample))
            scores["non_llm_context_precision_with_reference"] = float(
                self._context_precision.single_turn_score(sample)
            )
        if reference:
            for key, metric in (
                ("rouge_score", self._rouge),
                ("non_llm_string_similarity", self._similarity),
            ):
                scores[key] = float(metric.score(reference=reference, response=response).value)
        return scores
