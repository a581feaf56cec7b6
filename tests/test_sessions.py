"""The interview session service (shared by the API and the CLI), on the fake engine."""

import threading

import pytest

from interviewer.errors import InputError, UnknownQuestion
from interviewer.sessions import Interviews, SessionNotFound, SessionStateError, storable
from interviewer.store import Store

from .conftest import ADVERSARIAL

STRONG = {qid: q["strong"] for qid, q in ADVERSARIAL["questions"].items()}
PARTIAL = {qid: q["partial"] for qid, q in ADVERSARIAL["questions"].items()}


@pytest.fixture
def interviews(fake_engine, settings) -> Interviews:
    return Interviews(fake_engine, Store.for_settings(settings))


def test_create_orders_and_counts(interviews):
    s, token = interviews.create()
    assert s.question_ids == [f"Q{n}" for n in range(1, 11)] and s.state == "open" and s.position == 0
    assert len(token) > 30 and token not in s.token_sha256
    assert interviews.create(n_questions=3)[0].question_ids == ["Q1", "Q2", "Q3"]
    first = interviews.create(order="random", seed=7)[0].question_ids
    assert first == interviews.create(order="random", seed=7)[0].question_ids
    assert sorted(first, key=lambda q: int(q[1:])) == [f"Q{n}" for n in range(1, 11)] and first != sorted(first)
    assert interviews.create(questions=["q4", "2"])[0].question_ids == ["Q4", "Q2"]


@pytest.mark.parametrize("kwargs, error", [
    ({"order": "alphabetical"}, InputError), ({"n_questions": 0}, InputError), ({"n_questions": 11}, InputError),
    ({"questions": []}, InputError), ({"questions": ["Q1", "Q1"]}, InputError), ({"questions": ["Q77"]}, UnknownQuestion),
])
def test_create_rejects_bad_requests(interviews, kwargs, error):
    with pytest.raises(error):
        interviews.create(**kwargs)


def test_more_questions_than_listed_says_so(interviews):
    with pytest.raises(InputError, match="between 1 and 1 for the questions listed, not 3"):
        interviews.create(questions=["Q1"], n_questions=3)
    assert interviews.create(questions=["Q2", "Q1"], n_questions=1)[0].question_ids == ["Q2"]


def test_weakest_first_puts_unanswered_then_lowest_scores_first(interviews):
    s, _ = interviews.create(questions=["Q1", "Q2", "Q3"], candidate="ada")
    interviews.answer(s.id, STRONG["Q1"])  # high
    interviews.answer(s.id, PARTIAL["Q2"])  # lower
    interviews.skip(s.id)  # counts as 0
    scores = interviews.latest_scores("ada", "transformers_llms.md")
    assert scores["Q1"] > scores["Q2"] > scores["Q3"] == 0
    order = interviews.create(order="weakest", candidate="ada")[0].question_ids
    assert order[:7] == ["Q4", "Q5", "Q6", "Q7", "Q8", "Q9", "Q10"]  # never answered, document order
    assert order[7:] == ["Q3", "Q2", "Q1"]
    assert interviews.create(order="weakest", candidate="nobody")[0].question_ids[0] == "Q1"


def test_a_practice_question_hides_its_reference_unless_asked(interviews):
    s, _ = interviews.create(n_questions=2)
    q = interviews.next_question(s.id)
    assert (q.id, q.position, q.total, q.reference) == ("Q1", 1, 2, None)
    assert "softmax" not in q.model_dump_json().lower()
    shown = interviews.next_question(s.id, include_reference=True)
    assert shown.reference.answer.startswith("Self-Attention") and shown.reference.key_points
    assert all(kp.citation.quote for kp in shown.reference.key_points)


def test_a_whole_interview(interviews):
    s, token = interviews.create(n_questions=3, candidate="ada")
    first = interviews.answer(s.id, STRONG["Q1"])
    stored = interviews.attempts(s.id)
    assert [a.id for a in stored] == [first.id] and stored[0].result == first.result  # stored, full result
    assert first.result.provenance.document == "transformers_llms.md"
    with pytest.raises(SessionStateError, match="at Q2"):
        interviews.answer(s.id, "again", question_id="Q1")  # a retried request: refused, nothing stored
    interviews.skip(s.id, question_id="Q2")
    assert interviews.get(s.id).position == 2
    interviews.answer(s, "Positional encoding.", question_id="q3")
    done = interviews.get(s.id)
    assert done.state == "finished" and interviews.next_question(s.id) is None
    with pytest.raises(SessionStateError, match="finished"):
        interviews.answer(s.id, STRONG["Q4"])
    with pytest.raises(SessionStateError):
        interviews.skip(s.id)
    assert interviews.finish(s.id).state == "finished"  # idempotent

    report = interviews.report(s.id)
    assert [(i.question_id, i.status) for i in report.items] == [("Q1", "answered"), ("Q2", "skipped"),
                                                                 ("Q3", "answered")]
    assert report.answered == 2 and report.skipped == 1 and report.total == 3
    scores = [i.score for i in report.items]
    assert report.average_score == round((scores[0] + scores[2]) / 3, 1)
    assert {m.question_id for m in report.missed} >= {"Q2", "Q3"}  # a skip misses every point
    q2 = [m for m in report.missed if m.question_id == "Q2"]
    assert len(q2) == len(interviews.engine.rubric().for_question("Q2").key_points)
    assert all(m.status == "missed" for m in q2)
    locations = [c.location for c in report.study]
    assert len(locations) == len(set(locations)) and locations  # each passage once
    doc = interviews.engine.document()
    order = [p.location for q in doc.questions.values() for p in q.passages]
    assert locations == sorted(locations, key=order.index)  # in document order


def test_finishing_early_leaves_questions_unasked(interviews):
    s, _ = interviews.create(n_questions=3)
    interviews.answer(s.id, STRONG["Q1"])
    assert interviews.finish(s.id).state == "finished"
    report = interviews.report(s.id)
    assert [i.status for i in report.items] == ["answered", "not_asked", "not_asked"]
    assert report.average_score == report.items[0].score


def test_only_the_sessions_own_token_opens_it(interviews):
    a, token_a = interviews.create()
    b, token_b = interviews.create()
    assert interviews.authorize(a.id, token_a).id == a.id
    for session_id, token in [(a.id, token_b), (a.id, ""), (a.id, None), ("nope", token_a)]:
        with pytest.raises(SessionNotFound) as exc:
            interviews.authorize(session_id, token)
        assert "with this token" in str(exc.value)


def test_one_off_grading_is_stored_in_the_history(interviews):
    attempt = interviews.grade("q5", STRONG["Q5"], candidate="ada")
    assert attempt.question_id == "Q5" and attempt.session_id is None
    assert [a.id for a in interviews.history("ada")] == [attempt.id]
    interviews.grade("Q5", "Transfer learning.")  # no candidate: stored, in no history
    assert interviews.history_size("ada") == 1


def test_history_and_mastery_over_time(interviews):
    s1, _ = interviews.create(questions=["Q1"], candidate="ada")
    interviews.answer(s1.id, "Attention.")
    s2, _ = interviews.create(questions=["Q1"], candidate="ada")
    interviews.answer(s2.id, STRONG["Q1"])
    history = interviews.history("ada")
    assert [a.session_id for a in history] == [s2.id, s1.id]  # newest first
    mastery = interviews.mastery("ada")
    kps = interviews.engine.rubric().for_question("Q1").key_points
    assert {m.key_point_id for m in mastery} == {kp.id for kp in kps}
    for m in mastery:
        assert m.attempts == 2 and [p.at for p in m.timeline] == sorted(p.at for p in m.timeline)
        assert m.latest == m.timeline[-1].credit
    assert [m.latest for m in mastery] == sorted(m.latest for m in mastery)  # weakest first
    assert sum(m.latest for m in mastery) > sum(m.timeline[0].credit for m in mastery)  # improved
    assert interviews.mastery("nobody") == []


def test_unstorable_text_is_made_storable(interviews):
    assert storable("a\x00b\ud800c") == "ab?c"
    s, _ = interviews.create(questions=["Q1"])
    attempt = interviews.answer(s.id, "Self attention\x00 weighs tokens \udcff by relevance.")
    assert interviews.attempts(s.id)[0].answer == attempt.answer == "Self attention weighs tokens ? by relevance."


def test_concurrent_answers_to_one_question_count_once(interviews):
    s, _ = interviews.create(questions=["Q1", "Q2"])
    outcomes = []

    def submit(i):
        try:
            outcomes.append(interviews.answer(s.id, STRONG["Q1"] + f" ({i})", question_id="Q1").id)
        except SessionStateError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("conflict") == 5
    stored = interviews.attempts(s.id)
    assert len(stored) == 1 and stored[0].id in outcomes and interviews.get(s.id).position == 1
