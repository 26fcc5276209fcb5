"""`make bench-cache`: the answer cache at 10k (`ENTRIES=100000`) entries, on the real engine
and model, through both tiers as the service asks them (exact repeat, then by meaning).

Writes JSON with:
- `entries`: cache size (pair questions + natural questions from `--data` BEIR folders,
  embedded, topped up with generated questions whose vectors are natural ones perturbed
  to cosine ~0.85: `generated_entries`); `fill_seconds`; `optimize_seconds` (HNSW build);
- `exact_hit_latency_ms` p50/p95: a repeat (case and spacing changed) found by the exact
  tier: one indexed filter, TTL check, decode, ledger write (SQLite); nothing embedded;
  `exact_hit_latency_ms_warm` and `semantic_hit_latency_ms_warm`: the same lookups again;
- `semantic_hit_latency_ms`: a hit by meaning given the question's embedding (the service
  computes it once for cache and retrieval): filtered nearest-neighbour search, TTL check,
  decode, ledger write;
- `hit_latency_ms`: a repeat through the tier by meaning with its embedding: what every
  repeat cost before the exact tier; `embed_ms`: the embedding alone;
- `miss_latency_ms`: a new question through both tiers (exact miss, embed, search);
- `false_hit_rate`: near-miss probes (one word changes the answer: "hard" vs "soft
  budget", "AFC" vs "NFC") that hit an entry whose answer is wrong for them;
  `paraphrase_hit_rate`: paraphrase probes that hit their entry (eval/cache_pairs.jsonl);
- `squad_same_paragraph_hit_rate`: pairs of different SQuAD questions on one paragraph
  that would hit each other (mostly different questions, some real paraphrases: an upper
  bound of the false-hit rate on natural questions), when `--data` has SQuAD;
- `cost_saved_share`: a workload of repeated, paraphrased and new questions; the share of
  LLM cost the cache saved (correct hits only; wrong hits are counted, not credited);
- `threshold_sweep`: paraphrase hits vs near-miss false hits per threshold (ADR 0013).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import EmbeddingSettings, get_settings
from core.types import (
    Answer,
    Citation,
    Provenance,
    QueryVector,
    RequestContext,
    Rung,
    Usage,
)
from eval.report import emit_json
from gateway.cache import SemanticCache
from gateway.catalog import load_catalog
from gateway.ledger import SqlLedger
from ingest.embed import FastEmbedder
from store.edge import EdgeStore

PAIRS = Path(__file__).parent / "cache_pairs.jsonl"
DEFAULT_DATA = (Path("../shared/data/squad-v1.1-dev"), Path("../shared/data/scifact"))
PRICED_MODEL = "gpt-4.1-mini"  # the cost of a miss: a typical RAG call on a cheap model
TYPICAL_USAGE = Usage(2000, 250)
CORPUS = "bench"


def _key(question: str) -> str:
    return " ".join(question.lower().split())


def _pairs() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]


def _questions(folder: Path) -> dict[str, str]:
    path = folder / "queries.jsonl"
    if not path.is_file():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {str(r["_id"]): str(r["text"]) for r in rows}


def _same_paragraph_pairs(folder: Path, questions: dict[str, str], n: int) -> list[tuple[str, str]]:
    by_doc: dict[str, list[str]] = defaultdict(list)
    for qrels in sorted((folder / "qrels").glob("*.tsv")):
        for line in qrels.read_text().splitlines()[1:]:
            qid, doc, _ = line.split("\t")
            if qid in questions:
                by_doc[doc].append(qid)
    pairs = [
        (questions[a], questions[b])
        for ids in by_doc.values()
        for a, b in itertools.combinations(sorted(set(ids)), 2)
    ]
    random.Random(0).shuffle(pairs)
    return pairs[:n]


def _generated(n: int, seed: int) -> list[str]:
    """Filler questions when the data folders do not reach the wanted size."""
    rng = random.Random(seed)
    subjects = ["invoice", "tenant", "report", "index", "upload", "budget", "alias", "model"]
    things = ["retention", "limit", "owner", "format", "schedule", "region", "version", "quota"]
    asks = ["What is the {t} of the {s} {i}?", "Who changes the {t} for {s} {i}?"]
    return [
        rng.choice(asks).format(t=rng.choice(things), s=rng.choice(subjects), i=i) for i in range(n)
    ]


@functools.cache
def _price() -> float:
    return load_catalog().get(PRICED_MODEL).cost(TYPICAL_USAGE)


def _answer(question: str) -> Answer:
    return Answer(
        question,
        f"Answer to: {question} [1]",
        (Citation(1, "doc.md", "Doc", "", None, "chunk-1", "quote"),),
        found=True,
        generator=PRICED_MODEL,
        provenance=Provenance(
            rung=Rung.LLM,
            model=PRICED_MODEL,
            route="bench",
            usage=TYPICAL_USAGE,
            cost_usd=_price(),
            grounded=True,
        ),
    )


def _ask(cache: SemanticCache, question: str, context: RequestContext) -> Answer | None:
    """Both tiers, in the service's order: an exact repeat, else by meaning."""
    return cache.repeat(question, context, CORPUS) or cache.lookup(question, context, CORPUS)


def _hit_for(cache: SemanticCache, question: str, expected: str) -> tuple[bool, bool]:
    """(hit, correct): a hit is correct when it returns the expected entry's answer."""
    hit = _ask(cache, question, RequestContext())
    if hit is None:
        return False, False
    return True, hit.text == f"Answer to: {expected} [1]"


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
    }


def _timed(call: Any, items: Sequence[Any]) -> tuple[list[Any], dict[str, float]]:
    """Results and p50/p95 milliseconds of `call` over `items`."""
    results, latencies = [], []
    for item in items:
        begin = time.perf_counter()
        results.append(call(item))
        latencies.append((time.perf_counter() - begin) * 1000)
    return results, _percentiles(latencies)


def _fill(
    cache: SemanticCache, embedder: FastEmbedder, questions: Sequence[str], generated: Sequence[str]
) -> None:
    """Put every question with its answer. `questions` are embedded (in batches); each of
    the `generated` fillers gets a real question's vector perturbed to cosine ~0.85 with
    it, so 100k entries keep the real vectors' distribution without 100k model calls
    (20 minutes on this machine)."""
    real: list[list[float]] = []
    for start in range(0, len(questions), 256):
        batch = questions[start : start + 256]
        vectors = embedder.embed_queries(batch)
        real += vectors
        for question, vector in zip(batch, vectors, strict=True):
            cache.put(
                question, RequestContext(), CORPUS, _answer(question), vector=QueryVector(vector)
            )
    rng = np.random.default_rng(6)
    base = np.array(real)
    for i, question in enumerate(generated):
        noise = rng.standard_normal(base.shape[1])
        vector = base[i % len(base)] + noise * (0.62 / np.linalg.norm(noise))  # tan(acos .85)
        vector /= np.linalg.norm(vector)
        cache.put(
            question,
            RequestContext(),
            CORPUS,
            _answer(question),
            vector=QueryVector(vector.tolist()),
        )


def run(data: Sequence[Path], entries: int, requests: int, threshold: float) -> dict[str, Any]:
    settings = get_settings()
    embedder = FastEmbedder(EmbeddingSettings(models_dir=settings.embedding.models_dir))
    pairs = _pairs()
    natural: dict[str, str] = {}
    for folder in data:
        natural.update(_questions(folder))
    taken = {_key(p[side]) for p in pairs for side in ("cached", "probe")}
    unique = {_key(q): q for q in natural.values() if _key(q) not in taken}
    pool = sorted(unique.values())  # one question per normalised text: one cache entry each
    random.Random(1).shuffle(pool)
    held_out = pool[:requests]  # never cached up front: the workload's new questions
    cached_pairs = sorted({p["cached"] for p in pairs})
    filler = pool[requests : requests + entries - len(cached_pairs)]
    generated = _generated(entries - len(cached_pairs) - len(filler), seed=2)
    report: dict[str, Any] = {"threshold": threshold, "embedding_model": embedder.name}

    # Threshold sweep on the labelled pairs (cosine of the two questions).
    a = np.array([embedder.embed_query(p["cached"]) for p in pairs])
    b = np.array([embedder.embed_query(p["probe"]) for p in pairs])
    sims = (a * b).sum(axis=1)
    same = np.array([bool(p["same_answer"]) for p in pairs])
    report["threshold_sweep"] = [
        {
            "threshold": round(float(t), 2),
            "paraphrase_hit_rate": round(float(np.mean(sims[same] >= t)), 3),
            "false_hit_rate": round(float(np.mean(sims[~same] >= t)), 3),
        }
        for t in np.arange(0.85, 0.995, 0.01)
    ]

    with tempfile.TemporaryDirectory() as tmp:
        ledger = SqlLedger(f"sqlite:///{Path(tmp) / 'ledger.sqlite3'}")
        cache = SemanticCache(EdgeStore(Path(tmp), "cache"), embedder, threshold, 86_400, ledger)
        start = time.perf_counter()
        _fill(cache, embedder, [*cached_pairs, *filler], generated)
        report["entries"] = cache.count()
        report["fill_seconds"] = round(time.perf_counter() - start, 1)
        report["generated_entries"] = len(generated)
        start = time.perf_counter()
        cache.optimize()  # HNSW over the entries (Qdrant Edge builds it only when asked)
        report["optimize_seconds"] = round(time.perf_counter() - start, 1)

        context = RequestContext()
        exact = random.Random(3).sample(filler, min(300, len(filler)))
        repeats = random.Random(5).sample([*filler, *generated], min(300, entries))
        variants = [f"  {q.upper()} " if i % 2 else q.lower() for i, q in enumerate(repeats)]
        hits, report["exact_hit_latency_ms"] = _timed(
            lambda q: cache.repeat(q, context, CORPUS), variants
        )
        assert all(hit is not None for hit in hits), "an exact repeat missed"
        vectors = [QueryVector(v) for v in embedder.embed_queries(exact)]
        hits, report["semantic_hit_latency_ms"] = _timed(
            lambda v: cache.lookup("", context, CORPUS, vector=v), vectors
        )
        assert all(hit is not None for hit in hits), "a hit by meaning missed"
        # The same lookups again: a first pass after `optimize()` reads cold pages of the
        # rebuilt segment; a serving process answers from warm ones.
        _, report["exact_hit_latency_ms_warm"] = _timed(
            lambda q: cache.repeat(q, context, CORPUS), variants
        )
        _, report["semantic_hit_latency_ms_warm"] = _timed(
            lambda v: cache.lookup("", context, CORPUS, vector=v), vectors
        )
        hits, report["hit_latency_ms"] = _timed(lambda q: cache.lookup(q, context, CORPUS), exact)
        assert all(hit is not None for hit in hits), "a repeat by meaning missed"
        _, report["embed_ms"] = _timed(embedder.embed_query, exact)
        _, report["miss_latency_ms"] = _timed(lambda q: _ask(cache, q, context), held_out[:200])

        near = [p for p in pairs if not p["same_answer"]]
        para = [p for p in pairs if p["same_answer"]]
        report["false_hit_rate"] = round(
            sum(_hit_for(cache, p["probe"], p["cached"])[0] for p in near) / len(near), 3
        )
        report["near_miss_probes"] = len(near)
        report["paraphrase_hit_rate"] = round(
            sum(_hit_for(cache, p["probe"], p["cached"])[1] for p in para) / len(para), 3
        )
        report["paraphrase_probes"] = len(para)

        squad = next((f for f in data if (f / "qrels").is_dir() and "squad" in f.name), None)
        if squad is not None:
            sq_pairs = _same_paragraph_pairs(squad, _questions(squad), 1000)
            sa = np.array(embedder.embed_documents([x for x, _ in sq_pairs]))
            sb = np.array(embedder.embed_documents([y for _, y in sq_pairs]))
            report["squad_same_paragraph_hit_rate"] = round(
                float(np.mean((sa * sb).sum(axis=1) >= threshold)), 4
            )
            report["squad_pairs"] = len(sq_pairs)

        report["workload"] = _workload(cache, pairs, held_out, requests)
        report["cost_saved_share"] = report["workload"]["cost_saved_share"]
        cache.close()
        ledger.close()
    return report


def _workload(
    cache: SemanticCache, pairs: list[dict[str, Any]], new: list[str], requests: int
) -> dict[str, Any]:
    """New (40%), repeated (40%) and paraphrased (20%) questions in one tenant's scope."""
    rng = random.Random(4)
    context = RequestContext(tenant="workload")
    price = load_catalog().get(PRICED_MODEL).cost(TYPICAL_USAGE)
    paraphrase_of = {p["cached"]: p["probe"] for p in pairs if p["same_answer"]}
    asked: list[str] = []
    fresh = iter([*paraphrase_of, *new])
    counts = {"new": 0, "repeat": 0, "paraphrase": 0, "hits": 0, "wrong_hits": 0}
    saved = 0.0
    for _ in range(requests):
        roll = rng.random()
        waiting = [q for q in asked if q in paraphrase_of]
        if roll < 0.2 and waiting:
            original = rng.choice(waiting)
            question, kind = paraphrase_of.pop(original), "paraphrase"
        elif roll < 0.6 and asked:
            original = question = rng.choice(asked)
            kind = "repeat"
        else:
            original = question = next(fresh)
            kind = "new"
        counts[kind] += 1
        hit = _ask(cache, question, context)
        if hit is None:
            cache.put(question, context, CORPUS, _answer(original))
        elif hit.text == f"Answer to: {original} [1]" and kind != "new":
            counts["hits"] += 1
            saved += price
        else:
            counts["wrong_hits"] += 1
        if kind == "new":
            asked.append(question)
    total = requests * price
    return {
        **counts,
        "requests": requests,
        "cost_without_cache_usd": round(total, 4),
        "cost_saved_usd": round(saved, 4),
        "cost_saved_share": round(saved / total, 3),
        "priced_as": f"{PRICED_MODEL}, {TYPICAL_USAGE.input_tokens}+"
        f"{TYPICAL_USAGE.output_tokens} tokens per call",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench_cache")
    parser.add_argument("--data", type=Path, action="append", help="BEIR folders (questions)")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    data = args.data or [d for d in DEFAULT_DATA if d.is_dir()]
    threshold = args.threshold or get_settings().cache.threshold
    emit_json(run(data, args.entries, args.requests, threshold), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
