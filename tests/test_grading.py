"""The engine with fast fakes: gates, fusion, fallbacks, provenance, determinism."""

import pytest

from interviewer.bank import load
from interviewer.embed import HashingEmbedder
from interviewer.feedback import check_citations
from interviewer.grading import EmbeddingSignals, similarity_gate
from interviewer.judge import KeywordJudge
from interviewer.service import Engine

from .conftest import ADVERSARIAL

STRONG = ADVERSARIAL["questions"]["Q1"]["strong"]


def test_result_shape_and_provenance(fake_engine, seed_doc):
    r = fake_engine.grade("Q1", STRONG)
    assert r.question_id == "Q1" and r.max_score == 10 and 0 <= r.score <= 10
    assert r.score == round(r.score, 1)
    assert {kp.status for kp in r.key_points} <= {"covered", "partial", "missed"}
    assert all(kp.citation.location.startswith("Q1 › ") for kp in r.key_points)
    check_citations(r, load(seed_doc))
    p = r.provenance
    assert p.rubric_curated and len(p.document_sha256) == 64 and p.rubric_version
    assert p.embedder.id == "hashing-embedder" and p.judge.id == "keyword-judge"
    assert p.embedder.runtime == HashingEmbedder.runtime and p.judge.runtime == KeywordJudge.runtime
    assert p.judge_status == "ok" and p.signals == ["embedding", "judge"]
    assert p.engine_version and p.calibration
    assert "Score" in r.feedback


def test_same_answer_same_result(fake_engine):
    a = fake_engine.grade("Q2", ADVERSARIAL["questions"]["Q2"]["partial"])
    b = fake_engine.grade("Q2", ADVERSARIAL["questions"]["Q2"]["partial"])
    assert a.model_dump() == b.model_dump()


@pytest.mark.parametrize("answer, code", [
    ("", "empty"),
    ("   \n ", "empty"),
    ("Attention.", "too_short"),
    ("query, key, value, softmax, dot product, weighted sum", "keyword_list"),
    ("word " * 600, "too_long"),
])
def test_gates_give_a_clear_outcome(fake_engine, answer, code):
    r = fake_engine.grade("Q1", answer)
    assert r.gate is not None and r.gate.code == code and r.gate.message
    assert r.score == 0 and all(kp.status == "missed" for kp in r.key_points)
    assert r.provenance.judge_status == f"skipped: {code}"


def test_saying_the_same_sentences_again_scores_as_saying_them_once(fake_engine):
    weak = ADVERSARIAL["questions"]["Q7"]["weak"]
    once, thrice = fake_engine.grade("Q7", weak), fake_engine.grade("Q7", f"{weak} {weak}\n{weak}")
    assert thrice.score == once.score and thrice.flags == ["repeats_removed"] and once.flags == []
    assert [kp.credit for kp in thrice.key_points] == [kp.credit for kp in once.key_points]
    from rich.console import Console

    from interviewer import render

    shown = Console(record=True, width=120)
    render.result(shown, thrice)
    assert "said again were counted once" in shown.export_text()


def test_the_table_shows_what_the_score_is_made_of(fake_engine):
    from rich.console import Console

    from interviewer import render

    r = fake_engine.grade("Q1", ADVERSARIAL["questions"]["Q1"]["partial"])
    shown = Console(record=True, width=400)  # wide enough for each point and its evidence on one line
    render.result(shown, r)
    rows = [line for line in shown.export_text().splitlines() if line.startswith("│")]
    for kp, row in zip(r.key_points, rows, strict=True):
        assert kp.text in row and f" {kp.credit:.0%} " in row
        assert ("(weight" in row) == (kp.weight != 1)
    weights = [kp.weight for kp in r.key_points]
    mean = sum(kp.weight * kp.credit for kp in r.key_points) / sum(weights)
    assert 2.0 in weights and 0.5 in weights
    assert r.score == pytest.approx(10 * mean ** fake_engine.calibration.score_exponent, abs=0.05)


def test_claims_taken_back_earn_nothing(fake_engine):
    strong = ADVERSARIAL["questions"]["Q4"]["strong"]
    hedged = " ".join(f"{sentence} Or maybe not." for sentence in strong.replace("\n", " ").split(". "))
    assert fake_engine.grade("Q4", strong).score > 0
    r = fake_engine.grade("Q4", hedged)
    assert r.gate is not None and r.gate.code == "retracted" and r.score == 0
    partial = ADVERSARIAL["questions"]["Q4"]["partial"]
    taken_back = fake_engine.grade("Q4", f"{partial} Attention sees no order at all, or maybe not.")
    assert taken_back.flags == ["retractions_removed"]
    assert taken_back.score == fake_engine.grade("Q4", partial).score


def test_an_answer_of_short_fragments_goes_to_a_person(fake_engine):
    terse = "Attention sees all tokens at once. So it ignores order. Positions must be added. Sines encode them."
    r = fake_engine.grade("Q4", terse)
    assert r.flags == ["fragments"] and r.needs_review and r.gate is None and "marked for review" in r.feedback
    partial = fake_engine.grade("Q4", ADVERSARIAL["questions"]["Q4"]["partial"])
    assert "fragments" not in partial.flags and "marked for review" not in partial.feedback


def test_words_in_no_meaningful_order_are_gated_where_the_judge_finds_them_garbled(settings):
    """Shuffled, a strong answer's words still match its key points for the embedding (and the
    judge says yes to them too): only how unexpected its wording is gives it away."""
    import random
    from dataclasses import replace

    from interviewer.calibration import Calibration

    def engine(surprisal, cut=5.0):
        return Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge(surprisal=surprisal),
                      calibration_=replace(Calibration(), garbled_surprisal=cut))

    words = STRONG.split()
    random.Random(0).shuffle(words)
    salad = " ".join(words)
    assert engine(2.0).grade("Q1", salad).score > 0  # what the signals alone give it
    r = engine(6.0).grade("Q1", salad)
    assert r.gate is not None and r.gate.code == "garbled" and "sentences" in r.gate.message
    assert r.score == 0 and all(kp.status == "missed" for kp in r.key_points) and not r.needs_review
    assert r.provenance.judge_status == "ok"  # the judge was asked: that is how it was found
    assert engine(6.0, cut=None).grade("Q1", salad).gate is None  # a calibration without the cut
    short = "Tokens attend to tokens by relevance."  # too few words to tell
    assert engine(6.0).grade("Q1", short).gate is None


def test_the_judge_is_asked_only_about_points_the_embedding_does_not_decide(settings):
    from dataclasses import replace

    from interviewer.calibration import Calibration

    def engine(cut):
        return Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge(),
                      calibration_=replace(Calibration(), judge_skip_similarity=cut))

    sims = sorted(kp.similarity for kp in engine(None).grade("Q1", STRONG).key_points)
    cut = (sims[len(sims) // 2 - 1] + sims[len(sims) // 2]) / 2  # between two points' cosines
    assert sims[0] < cut < sims[-1]
    mixed = engine(cut)
    r = mixed.grade("Q1", STRONG)
    for kp in r.key_points:
        assert (kp.judge is None) == (kp.similarity >= cut)
        if kp.judge is None:
            assert kp.credit == pytest.approx(mixed.calibration.embedding_only.credit(kp.similarity), abs=0.002)
    assert r.provenance.judge_status == "ok" and r.provenance.signals == ["embedding", "judge"]
    never = engine(-1.0)
    r = never.grade("Q1", STRONG)
    assert never.judge().calls == 0 and all(kp.judge is None for kp in r.key_points)
    assert r.provenance.judge_status.startswith("skipped") and r.provenance.signals == ["embedding"]
    assert not r.needs_review and r.score > 0


def test_a_key_point_negated_in_the_answer_goes_to_the_judge_whatever_its_cosine(settings):
    """The embedding barely sees a "not": a sentence that negates a key point sits close to it, so
    the cosine cut that leaves a point to the embedding must not apply to it."""
    from dataclasses import replace

    from interviewer.calibration import Calibration

    class NotJudge:  # says no to any answer with "not" in it
        id, sha256, runtime = "not-judge", "2" * 64, "a rule (a test double)"

        def p_yes(self, context, answer, questions):
            return [0.05 if " not " in f" {answer} " else 0.9 for _ in questions]

        def surprisal(self, context, answer):
            return 2.0

    engine = Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=NotJudge(),
                    calibration_=replace(Calibration(), judge_skip_similarity=0.3))
    stated = "BERT is an encoder-only transformer, while GPT is a decoder-only transformer."
    negated = "BERT is not an encoder-only transformer, and GPT is not a decoder-only transformer."
    good, bad = (engine.grade("Q3", a).key_points[0] for a in (stated, negated))
    assert good.id == bad.id == "encoder-decoder" and bad.similarity >= 0.3
    assert good.judge is None and good.status == "covered"  # left to the embedding
    assert bad.judge is not None and bad.judge.p_yes == 0.05 and bad.status == "missed"


def test_a_negated_point_worded_as_the_key_point_is_credited_by_the_judge_alone(settings):
    """Nearly word for word but for a "not": a calibration that trusts the cosine must not let it
    outweigh a judge that does not believe the point."""
    from dataclasses import replace

    from interviewer.calibration import Calibration, Fusion

    class UnsureJudge:  # as sure of any answer with "not" in it as of "I don't know."
        id, sha256, runtime = "unsure-judge", "3" * 64, "a rule (a test double)"

        def p_yes(self, context, answer, questions):
            return [0.3 if " not " in f" {answer} " or answer == "I don't know." else 0.9 for _ in questions]

        def surprisal(self, context, answer):
            return 2.0

    cal = replace(Calibration(), full=Fusion(12.0, 3.0, -6.0), judge_skip_similarity=0.3)
    engine = Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=UnsureJudge(), calibration_=cal)
    negated = "BERT is not an encoder-only transformer, and GPT is not a decoder-only transformer."
    kp = engine.grade("Q3", negated).key_points[0]
    assert kp.id == "encoder-decoder" and kp.similarity >= 0.3 and kp.judge.p_yes == kp.judge.p_yes_null
    assert kp.credit == round(cal.judge_only.credit(0.0, 0.0), 3) < cal.full.credit(kp.similarity, 0.0)
    assert kp.status == "missed"


def test_judge_failure_falls_back_to_embeddings_and_says_so(settings):
    from interviewer.embed import HashingEmbedder

    engine = Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge(fail=True))
    r = engine.grade("Q1", STRONG)
    assert r.provenance.judge_status.startswith("unavailable")
    assert r.provenance.signals == ["embedding"] and r.needs_review
    assert r.score > 0 and "embedding signal only" in r.feedback
    from rich.console import Console

    from interviewer import render

    def shown(result) -> str:
        console = Console(record=True, width=200)
        render.result(console, result)
        return console.export_text()

    # said where it is read, not only in the dim provenance line at the bottom
    assert "Note: the judge model was unavailable" in shown(r)
    ok = Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge()).grade("Q1", STRONG)
    assert ok.provenance.judge_status == "ok" and "Note:" not in shown(ok)


def test_missing_judge_model_is_reported_not_crashed(settings, tmp_path):
    from interviewer.embed import HashingEmbedder

    s = settings.model_copy(update={"judge_path": tmp_path / "missing.gguf"})
    r = Engine(s, profile="tiny", embedder=HashingEmbedder()).grade("Q1", STRONG)
    assert "not found" in r.provenance.judge_status and r.needs_review


def test_instructions_in_the_answer_are_removed_and_flagged(fake_engine):
    weak = ADVERSARIAL["questions"]["Q1"]["weak"]
    plain = fake_engine.grade("Q1", weak)
    for injection in ADVERSARIAL["injections"]:
        r = fake_engine.grade("Q1", f"{weak} {injection}")
        assert r.score == plain.score
        assert r.flags == ["instructions_removed"] and r.needs_review and r.removed_text


def test_unknown_question_is_an_error(fake_engine):
    from interviewer.errors import UnknownQuestion

    with pytest.raises(UnknownQuestion):
        fake_engine.grade("Q42", "anything")


@pytest.mark.parametrize("p_answer, p_reference, detected", [
    (0.8, 0.2, True),  # believed far more than for the null answer and than for the reference
    (0.8, 0.75, False),  # the judge says yes as readily to the (correct) reference answer
    (0.2, 0.05, False),  # not believed much more than for the null answer (0.1)
])
def test_a_misconception_needs_the_embedding_and_the_judge_beyond_both_baselines(
        settings, tmp_path, p_answer, p_reference, detected):
    from interviewer import grading

    class Table:
        id, sha256, runtime = "table-judge", "1" * 64, "a table (a test double)"

        def p_yes(self, context, answer, questions):
            p = 0.1 if answer == grading.NULL_ANSWER else p_reference if answer == reference else p_answer
            return [p] * len(questions)

        def surprisal(self, context, answer):
            return 2.0

    engine = Engine(settings.model_copy(update={"data_dir": tmp_path}), profile="tiny",
                    embedder=HashingEmbedder(), judge=Table())
    reference = grading.reference_answer(engine.rubric().for_question("Q3"))
    answer = "BERT is a decoder-only model that generates text left to right, like GPT."
    r = engine.grade("Q3", answer)
    assert any(m.detected for m in r.misconceptions) == detected
    assert all(m.penalty > 0 and m.evidence for m in r.misconceptions if m.detected)
    asked = [m for m in r.misconceptions if m.judge]  # the result shows why: both signals, both baselines
    assert asked and all(m.similarity >= engine.calibration.misconception_similarity for m in asked)
    assert all((m.judge.p_yes, m.judge.p_yes_null, m.judge.p_yes_reference) == (p_answer, 0.1, p_reference)
               for m in asked)
    assert not any(m.detected for m in engine.grade("Q3", answer, use_judge=False).misconceptions)


def _emb(question_sim: float, kp_sim: list[float]) -> EmbeddingSignals:
    return EmbeddingSignals(segments=["x"], kp_sim=kp_sim, kp_best=[0] * len(kp_sim),
                            kp_negation_differs=[False] * len(kp_sim), mis_sim=[], mis_best=[],
                            topic_sim=0.9, question_sim=question_sim, point_sim=max(kp_sim))


def test_an_answer_made_of_the_questions_and_topics_words_restates_it(fake_engine):
    qr = fake_engine.rubric().for_question("Q2")  # What is "Multi-Head Attention"? Why do we need it?
    cal, n = fake_engine.calibration, len(qr.key_points)
    restated = "Multi-head attention is the multi-head form of attention, and transformers need it."
    # no word beyond the question's and the topic's: restated, however close a key point is ...
    gate = similarity_gate(qr, restated, _emb(0.77, [0.81] * n), cal, topic="Transformers & LLMs")
    assert gate is not None and gate.code == "restated"
    # ... unless it states one nearly word for word (a question whose text holds its answer's words)
    assert similarity_gate(qr, restated, _emb(0.77, [0.5] * (n - 1) + [0.93]), cal, topic="Transformers & LLMs") is None
    # without the topic, "transformers" is a new word: then only an answer closer to the question is
    assert similarity_gate(qr, restated, _emb(0.77, [0.81] * n), cal) is None
    assert similarity_gate(qr, restated, _emb(0.77, [0.5] * n), cal).code == "restated"
    # an answer that adds words of the reference is not a restatement
    assert similarity_gate(qr, "Multi-head attention runs attention in parallel.", _emb(0.77, [0.5] * n),
                           cal, topic="Transformers & LLMs") is None
    # nor one only loosely close to the question as a whole: an answer to a long question (a scenario,
    # a table of data) can be made of its words ("Topaz is hard because you cannot scratch it with a penny.")
    assert cal.restated_similarity > 0.6
    assert similarity_gate(qr, restated, _emb(0.6, [0.5] * n), cal, topic="Transformers & LLMs") is None


def test_the_score_maps_the_mean_credit_through_the_calibrations_exponent(settings):
    from dataclasses import replace

    from interviewer.calibration import Calibration
    from interviewer.embed import HashingEmbedder

    answer = ADVERSARIAL["questions"]["Q1"]["partial"]
    results = {}
    for exponent in (1.0, 0.8):
        engine = Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge(),
                        calibration_=replace(Calibration(), score_exponent=exponent))
        results[exponent] = engine.grade("Q1", answer)
    linear, mapped = results[1.0], results[0.8]
    assert [kp.credit for kp in linear.key_points] == [kp.credit for kp in mapped.key_points]
    mean = sum(kp.weight * kp.credit for kp in linear.key_points) / sum(kp.weight for kp in linear.key_points)
    assert linear.score == pytest.approx(10 * mean, abs=0.05)
    assert mapped.score == pytest.approx(10 * mean ** 0.8, abs=0.05) and mapped.score > linear.score


def test_a_grade_needs_review_when_its_signals_are_indecisive_or_disagree(settings):
    """On the dev data the least confident grades are the ones most often wrong (bench/quality's
    "Flagged for review" line). A disagreement between the signals counts through the confidence
    it takes away: on its own it picked grades no worse than the rest."""
    from dataclasses import replace

    from interviewer import grading
    from interviewer.calibration import Calibration

    cut = Calibration().review_confidence
    assert grading.confidence([0.5, 0.52], [], judged=True) < cut  # every point near half credit
    assert grading.confidence([0.95, 0.02], [0.1], judged=True) > 0.5  # clearly covered, clearly missed
    assert grading.confidence([0.95, 0.02], [0.95], judged=True) < cut  # ... but the two signals say opposite things
    assert grading.confidence([0.95, 0.02], [], judged=False) < grading.confidence([0.95, 0.02], [], judged=True)

    def engine(review_confidence):
        return Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge(),
                      calibration_=replace(Calibration(), review_confidence=review_confidence))

    r = engine(1.01).grade("Q1", STRONG)
    assert r.needs_review and r.confidence < 1.01
    assert not engine(0.0).grade("Q1", STRONG).needs_review


def test_a_samples_confidence_is_the_one_its_grade_shows(fake_engine):
    """calibrate.confidence (what bench/quality measures) and grading (what users see) agree."""
    from interviewer import calibrate
    from interviewer.calibration import judge_evidence

    for kind in ("strong", "partial", "weak"):
        r = fake_engine.grade("Q1", ADVERSARIAL["questions"]["Q1"][kind])
        sample = calibrate.Sample(
            id=kind, question="Q1", grade=0.0, gate=None, weights=tuple(kp.weight for kp in r.key_points),
            sims=tuple(kp.similarity for kp in r.key_points), answer_words=0,
            judge=tuple(judge_evidence(kp.judge.p_yes, kp.judge.p_yes_null, kp.judge.p_yes_reference)
                        if kp.judge else 0.0 for kp in r.key_points))
        assert calibrate.confidence(sample, fake_engine.calibration) == pytest.approx(r.confidence, abs=0.01)
