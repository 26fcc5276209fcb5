"""The multi-hop set builder and its metrics (eval/multihop.py) on a tiny synthetic folder:
two articles of three paragraphs each, a stand-in `ask` in place of RagService.ask."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InvalidRequestError
from core.settings import AgentSettings
from core.types import Answer, Chunk, Filters, RequestContext, ScoredChunk
from eval.multihop import (
    Recorder,
    answers_in_context,
    both_gold,
    build_set,
    delta,
    given_passages,
    join_questions,
    load_set,
    run_mode,
)
from retrieval.agentic import Orchestrator

FACTS = {
    "Alpha": ["Alpha was founded in 1901.", "Alpha's river is the Ober.", "Alpha has a tram."],
    "Beta": ["Beta grows apples.", "Beta's mayor is Kora.", "Beta hosts a fair in May."],
}
QUESTIONS = {
    "Alpha": ["When was Alpha founded?", "What is Alpha's river?", "What does Alpha have?"],
    "Beta": ["What does Beta grow?", "Who is Beta's mayor?", "When is Beta's fair?"],
}
ANSWERS = {
    "Alpha": ["1901", "the Ober", "a tram"],
    "Beta": ["apples", "Kora", "May"],
}


def _squad(root: Path) -> Path:
    folder = root / "squad"
    folder.mkdir()
    corpus, qa = [], []
    for article, paragraphs in FACTS.items():
        for i, text in enumerate(paragraphs):
            pid = f"{article}__p{i:03d}"
            corpus.append({"_id": pid, "title": article, "text": text})
            qa.append(
                {
                    "id": f"{article}-q{i}",
                    "question": QUESTIONS[article][i],
                    "answers": [ANSWERS[article][i]],
                    "gold_context_id": pid,
                    "title": article,
                }
            )
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa))
    return folder


def test_the_builder_joins_two_questions_of_one_article_with_distinct_gold(
    tmp_path: Path,
) -> None:
    squad = _squad(tmp_path)
    out = tmp_path / "set"
    summary = build_set(squad, out, n=2, seed=1)
    rows = [json.loads(line) for line in (out / "multihop.jsonl").read_text().splitlines()]
    assert summary["questions"] == len(rows) == 2
    ids = {doc["_id"] for doc in map(json.loads, (squad / "corpus.jsonl").read_text().splitlines())}
    for row in rows:
        first, second = row["gold"]
        assert first != second
        assert {first, second} <= ids
        assert first.split("__p")[0] == second.split("__p")[0]  # one article
        assert row["question"].count("?") == 1
        assert ", and " in row["question"]
        assert len(row["answers"]) == 2
        assert row["id"].count("+") == 1
    assert len({row["id"] for row in rows}) == 2
    # The question halves are never reused across rows.
    halves = [half for row in rows for half in row["id"].split("+")]
    assert len(halves) == len(set(halves))


def test_the_folder_links_the_corpus_and_copies_nothing(tmp_path: Path) -> None:
    squad = _squad(tmp_path)
    out = tmp_path / "set"
    build_set(squad, out, n=2)
    link = out / "corpus.jsonl"
    assert link.is_symlink()
    assert link.resolve() == (squad / "corpus.jsonl").resolve()
    assert sorted(p.name for p in out.iterdir()) == ["corpus.jsonl", "multihop.jsonl"]
    items = load_set(out)
    assert [len(item.gold) for item in items] == [2, 2]
    build_set(squad, out, n=2)  # a rebuild replaces the link
    assert link.is_symlink()


def test_the_builder_refuses_more_pairs_than_the_articles_hold(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="only"):
        build_set(_squad(tmp_path), tmp_path / "set", n=50)


def test_a_second_question_is_lowercased_only_after_a_question_word() -> None:
    assert join_questions("Who won?", "Where  was it held?") == "Who won, and where was it held?"
    assert join_questions("Who won?", "Denver scored how often?") == (
        "Who won, and Denver scored how often?"
    )
    common = {"cities"}.__contains__
    assert join_questions("Who won?", "Cities hold what?", lambda w: common(w.lower())) == (
        "Who won, and cities hold what?"
    )


def _hits(*sources: str) -> tuple[ScoredChunk, ...]:
    return tuple(
        ScoredChunk(Chunk(f"{s}-{i}", s, f"text of {s}", s, "", None, 0, f"h{s}{i}"), 1.0)
        for i, s in enumerate(sources)
    )


def test_single_shot_counts_its_first_ten_distinct_passages() -> None:
    sources = [f"p{i}" for i in range(12)]
    ranked = _hits("p0", "p0", *sources)  # two chunks of p0 count once
    given = given_passages([ranked])
    assert given == sources[:10]
    assert both_gold(given, ["p0", "p9"])
    assert not both_gold(given, ["p0", "p10"])


def test_the_agentic_union_is_cut_at_ten_by_best_rank_across_sub_questions() -> None:
    first = _hits(*(f"a{i}" for i in range(8)))
    second = _hits("a1", *(f"b{i}" for i in range(7)))
    given = given_passages([first, second])
    assert len(given) == 10
    # a1 is first-ranked in the second call: its best rank is 0, beside a0.
    assert given[:3] == ["a0", "a1", "b0"]
    assert both_gold(given, ["a4", "b3"])
    assert not both_gold(given, ["a6", "b0"])  # a6 is ranked 6th: cut


def test_answer_in_context_needs_both_answers() -> None:
    contexts = ["The Broncos won.", "It was played in Santa Clara, California."]
    assert answers_in_context(
        ["Denver broncos", "Santa Clara"], ["Denver " + contexts[0], *contexts]
    )
    assert not answers_in_context(["Denver broncos", "Santa Clara"], ["Denver " + contexts[0]])
    assert not answers_in_context(["Broncos", "Levi's Stadium"], contexts)
    assert not answers_in_context([], contexts)


class PassageAsk:
    """Retrieves the passage named by the question's last word: "Where is p3?" -> p3."""

    def __call__(
        self, question: str, top_k: int | None, filters: Filters | None, context: RequestContext
    ) -> Answer:
        names = [w.strip("?,") for w in question.split() if w.strip("?,").startswith("p")]
        hits = _hits(*names)[: top_k or 5]
        return Answer.not_found(question, "extractive", list(hits))


def test_run_mode_scores_single_shot_and_agentic_on_hand_made_answers(tmp_path: Path) -> None:
    from eval.multihop import MultiHopItem

    items = [
        MultiHopItem("1", "Where is p1, and where is p2?", ("p1", "p2"), ("text of p1", "p2")),
        MultiHopItem("2", "Where is p3, and where is p9?", ("p3", "p4"), ("p3", "p4")),
    ]
    recorder = Recorder(PassageAsk())
    agent = Orchestrator(recorder, AgentSettings())
    single = run_mode(items, agent, recorder, "single", top_k=1)
    agentic = run_mode(items, agent, recorder, "agentic", top_k=1)
    assert single["both_gold_recall@10"] == 0.0  # top_k=1: only p1, then only p3
    assert agentic["both_gold_recall@10"] == 0.5  # p1 and p2 each found by its part
    assert agentic["rows"][0]["sub_questions"] == ["Where is p1?", "Where is p2?"]
    assert agentic["rows"][0]["answer_in_context"] is True
    assert agentic["cost_usd"] == 0.0
    assert delta(single, agentic)["both_gold_recall@10_points"] == 50.0
