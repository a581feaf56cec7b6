"""The real path on the smallest real models: MiniLM + SmolLM2-135M (tiny profile)."""

import pytest

from interviewer.bank import load
from interviewer.feedback import check_citations

from .conftest import ADVERSARIAL

pytestmark = pytest.mark.real


@pytest.mark.parametrize("qid", [f"Q{n}" for n in range(1, 11)])
def test_every_seed_question_grades_with_cited_feedback(tiny_engine, seed_doc, qid):
    r = tiny_engine.grade(qid, ADVERSARIAL["questions"][qid]["strong"])
    assert r.gate is None and 0 < r.score <= 10
    assert r.provenance.judge_status == "ok"
    assert r.provenance.judge.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert r.provenance.embedder.sha256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    check_citations(r, load(seed_doc))
    assert any(kp.evidence for kp in r.key_points)
    for kp in r.key_points:
        assert kp.judge is not None and 0 <= kp.judge.p_yes <= 1


def test_real_embeddings_separate_strong_from_off_topic(tiny_engine):
    for qid in ("Q1", "Q5", "Q9"):
        answers = ADVERSARIAL["questions"][qid]
        strong = tiny_engine.grade(qid, answers["strong"], use_judge=False)
        off = tiny_engine.grade(qid, answers["off_topic"], use_judge=False)
        assert strong.score > off.score + 3, qid
        assert strong.provenance.signals == ["embedding"]


def test_repeat_grading_is_identical(tiny_engine):
    answer = ADVERSARIAL["questions"]["Q6"]["partial"]
    assert tiny_engine.grade("Q6", answer).model_dump() == tiny_engine.grade("Q6", answer).model_dump()
