from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from core.errors import InvalidRequestError
from eval.answers import answer_in_context, exact_match, f1, normalize_answer, string_present
from eval.datasets import load_beir, load_qa_folder, write_unanswerable
from eval.docs import load_questions
from eval.gate import check
from eval.report import write_reports
from eval.stats import percentiles


def test_squad_normalisation_drops_case_punctuation_and_articles() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"


def test_exact_match_and_f1_take_the_best_reference() -> None:
    assert exact_match("the Denver Broncos", ["Broncos", "Denver Broncos"]) == 1.0
    assert f1("Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8)
    assert f1("Carolina", ["Denver Broncos"]) == 0.0


def test_answer_in_context_looks_in_all_passages() -> None:
    assert answer_in_context(["Qdrant Edge"], ["The store", "is Qdrant  Edge."]) == 1.0
    assert answer_in_context(["Chroma"], ["The store is Qdrant Edge."]) == 0.0


def test_percentiles_use_observed_values() -> None:
    assert percentiles([float(x) for x in range(1, 101)]) == {"p50": 50.0, "p95": 95.0}
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0}


def test_beir_loader_tolerates_crlf_qrels_and_keeps_judged_queries(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "T", "text": "one"}\n{"_id": "d2", "text": "two"}\n'
    )
    (tmp_path / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "unjudged"}\n'
    )
    (tmp_path / "qrels" / "train.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq1\td2\t1\r\n")
    dataset = load_beir(tmp_path, "train")
    assert dataset.queries == {"q1": "first"}
    assert dataset.qrels == {"q1": {"d2": 1}}
    assert [d.id for d in dataset.corpus] == ["d1", "d2"]


def test_qa_loader_builds_qrels_from_gold_contexts(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "p1", "title": "A", "text": "x y"}\n')
    (tmp_path / "qa.jsonl").write_text(
        '{"id": "q", "question": "x?", "answers": ["y"], "gold_context_id": "p1"}\n'
    )
    dataset, rows = load_qa_folder(tmp_path)
    assert dataset.qrels == {"q": {"p1": 1}}
    assert rows[0].answers == ("y",)


def test_gate_reports_missing_and_out_of_bound_metrics(tmp_path: Path) -> None:
    thresholds = tmp_path / "t.toml"
    thresholds.write_text(
        '[s.min]\n"aggregates.a" = 0.5\n"aggregates.gone" = 0.1\n'
        '[s.max]\n"latency_ms.total.p95" = 10.0\n'
    )
    report = {"aggregates": {"a": 0.4}, "latency_ms": {"total": {"p95": 12.0}}}
    violations = [str(v) for v in check(report, "s", thresholds)]
    assert violations == [
        "aggregates.a = 0.4000, needs >= 0.5",
        "aggregates.gone = missing, needs >= 0.1",
        "latency_ms.total.p95 = 12.0000, needs <= 10.0",
    ]
    assert (
        check(
            {"aggregates": {"a": 0.6, "gone": 1.0}, "latency_ms": {"total": {"p95": 1.0}}},
            "s",
            thresholds,
        )
        == []
    )


class _SvgCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1


def test_html_report_is_self_contained_with_plots(tmp_path: Path) -> None:
    report = {
        "title": "T",
        "aggregates": {"recall@5": 0.9, "hit@1": 0.7},
        "latency_ms": {"embed": {"p50": 1.0, "p95": 2.0}, "total": {"p50": 3.0, "p95": 5.0}},
        "rows": [{"id": "q", "question": "?", "latency_ms": {"total": 3.0}, "hit@1": 0.0}],
        "configs": [
            {"config": "a", "ndcg@10": 0.7, "p95_ms": 3.0},
            {"config": "b", "ndcg@10": 0.6, "p95_ms": 1.0},
        ],
    }
    paths = write_reports(report, tmp_path, "r")
    page = paths["html"].read_text()
    parser = _SvgCounter()
    parser.feed(page)
    assert parser.tags["svg"] == 5  # metric bars, stage bars, histogram, scatter, config bars
    assert parser.tags["circle"] == 2
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "| recall@5 | 0.9000 |" in paths["md"].read_text()
    assert '"hit@1": 0.7' in paths["json"].read_text()


def test_an_unanswerable_row_needs_no_gold_context(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "p1", "title": "A", "text": "x y"}\n')
    (tmp_path / "qa.jsonl").write_text(
        '{"id": "q", "question": "x?", "answers": ["y"], "gold_context_id": "p1"}\n'
        '{"id": "u", "question": "z?", "answers": [], "gold_context_id": null}\n'
        '{"id": "v", "question": "w?", "answers": []}\n'
    )
    dataset, rows = load_qa_folder(tmp_path)
    assert [(r.id, r.gold_context_id) for r in rows] == [("q", "p1"), ("u", None), ("v", None)]
    assert dataset.qrels == {"q": {"p1": 1}}
    (tmp_path / "qa.jsonl").write_text('{"id": "q", "question": "x?", "answers": ["y"]}\n')
    with pytest.raises(InvalidRequestError, match="gold_context_id"):
        load_qa_folder(tmp_path)


def test_removing_articles_makes_their_questions_unanswerable(tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    articles = ["Alpha", "Beta", "Gamma"]
    (source / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": f"{a}__p00{i}", "title": a, "text": f"{a} {i}"}) + "\n"
            for a in articles
            for i in range(2)
        )
    )
    (source / "qa.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "id": f"{a}{i}",
                    "question": f"{a}?",
                    "answers": [a],
                    "gold_context_id": f"{a}__p00{i}",
                }
            )
            + "\n"
            for a in articles
            for i in range(2)
        )
    )
    summary = write_unanswerable(source, out, remove=1, seed=3)
    (removed,) = summary["removed"]
    dataset, rows = load_qa_folder(out)
    assert (summary["questions"], summary["unanswerable"]) == (6, 2)
    assert not any(doc.id.startswith(removed) for doc in dataset.corpus)
    assert len(dataset.corpus) == 4
    assert {r.id for r in rows if not r.answers} == {f"{removed}0", f"{removed}1"}
    assert write_unanswerable(source, tmp_path / "again", remove=1, seed=3) == summary
    with pytest.raises(InvalidRequestError, match="remove must be"):
        write_unanswerable(source, out, remove=3)


def test_string_presence_is_normalised_and_needs_whole_words() -> None:
    assert string_present("The answer is the Denver Broncos. [1]", ["denver broncos"]) == 1.0
    assert string_present("Broncos", ["Denver Broncos"]) == 0.0
    assert string_present("cat", ["ca"]) == 0.0


def test_question_files_are_checked_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "What is x?", "answers": ["x"], "source": "a.md"}\n'
        '{"question": "Capital of Mars?", "answers": [], "source": null}\n'
    )
    questions = load_questions(path)
    assert [(q.answers, q.source) for q in questions] == [(("x",), "a.md"), ((), None)]
    for bad in (
        '{"answers": []}',
        '{"question": "q", "answers": "x"}',
        "not json",
        '{"question": ""}',
    ):
        path.write_text('{"question": "ok?"}\n' + bad + "\n")
        with pytest.raises(InvalidRequestError, match=r"q\.jsonl:2"):
            load_questions(path)
