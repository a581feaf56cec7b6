import json
import random
from dataclasses import replace

import pytest

from interviewer import calibrate, calibration
from interviewer.calibration import Calibration, Fusion
from interviewer.errors import InputError

from .conftest import EVAL


def _synthetic(n=300, seed=1):
    rng = random.Random(seed)
    truth = Fusion(w_sim=6.0, w_judge=0.8, bias=-3.5)
    samples = []
    for i in range(n):
        sim, j = rng.uniform(0, 1), rng.uniform(-3, 3)
        grade = min(1, max(0, truth.credit(sim, j) + rng.gauss(0, 0.05)))
        samples.append(calibrate.Sample(id=str(i), question=f"q{i % 12}", grade=grade, gate=None, weights=(1.0,),
                                        sims=(sim,), judge=(j,), answer_words=20))
    return samples


def test_fit_recovers_the_fusion_that_made_the_grades():
    samples = _synthetic()
    fitted = calibrate.fit(samples, Calibration())
    preds = [calibrate.predict(s, fitted) for s in samples]
    assert calibrate.pearson(preds, [s.grade for s in samples]) > 0.9
    assert fitted.full.w_sim > 2 and fitted.full.w_judge > 0.3  # both signals carry weight
    assert fitted.embedding_only.w_judge == 0 and fitted.judge_only.w_sim == 0
    assert fitted.judge_skip_similarity is None  # the judge informs every point: always ask it


def test_among_near_ties_the_fit_leans_least_on_the_judge(monkeypatch):
    samples = _synthetic()
    monkeypatch.setattr(calibrate, "FUSION_TOLERANCE", 0.0)
    best = calibrate.fit_fusion(samples, Fusion())
    monkeypatch.setattr(calibrate, "FUSION_TOLERANCE", 1.0)  # every weighting counts as a tie
    least = calibrate.fit_fusion(samples, Fusion())
    assert least.w_judge < best.w_judge
    allowed = [w for w in calibrate.GRID["w_judge"]
               if any(calibrate._keeps_top((s, w)) for s in calibrate.GRID["w_sim"])]
    assert least.w_judge == min(allowed)


def test_the_fit_leaves_to_the_embedding_the_points_where_the_judge_adds_only_noise():
    rng = random.Random(2)
    samples = []
    for s in _synthetic(600):
        if s.sims[0] >= 0.8:  # stated nearly word for word: the grade no longer depends on the judge
            s = calibrate.Sample(**{**s.__dict__, "grade": min(1.0, 0.8 + rng.gauss(0, 0.05)),
                                    "judge": (rng.uniform(-3, 3),)})
        samples.append(s)
    fitted = calibrate.fit(samples, Calibration())
    assert fitted.judge_skip_similarity == 0.8
    strong = calibrate.Sample(id="x", question="q", grade=1, gate=None, weights=(1.0,), sims=(0.9,), judge=(-3.0,),
                              answer_words=20)
    assert calibrate.predict(strong, fitted) == pytest.approx(fitted.embedding_only.credit(0.9))


def test_a_point_is_left_to_the_embedding_only_from_the_fitted_cosine():
    cal = Calibration(judge_skip_similarity=0.8)
    assert cal.asks_judge(0.79) and not cal.asks_judge(0.8)
    assert cal.credit(0.85, -2.0) == cal.credit(0.85, None) == cal.embedding_only.credit(0.85)
    assert cal.credit(0.5, 1.0) == cal.full.credit(0.5, 1.0) != cal.credit(0.5, None)
    assert Calibration().asks_judge(1.0)  # without a fitted cut-off the judge is always asked


def test_a_single_signal_grades_on_the_scale_of_both_together():
    samples = _synthetic()
    fitted = calibrate.fit(samples)
    both = [fitted.full.credit(s.sims[0], s.judge[0]) for s in samples]
    embedding = [fitted.embedding_only.credit(s.sims[0]) for s in samples]
    judge = [fitted.judge_only.credit(0.0, s.judge[0]) for s in samples]
    for alone in (embedding, judge):
        assert abs(sum(alone) - sum(both)) / len(both) < 0.1  # no grade collapses towards 0 or 1
        assert calibrate.pearson(alone, both) > 0.4


def test_the_score_exponent_follows_generous_teachers_but_keeps_unrelated_answers_near_zero():
    cal = Calibration()
    samples = _synthetic()
    exact = [calibrate.Sample(**{**s.__dict__, "grade": calibrate.coverage(s, cal)}) for s in samples]
    assert calibrate.fit_exponent(exact, cal) == 1.0  # grades on the credits' own scale: no change
    generous = [calibrate.Sample(**{**s.__dict__, "grade": s.grade ** 0.4}) for s in exact]
    exponent = calibrate.fit_exponent(generous, cal)
    assert exponent < 1.0
    assert calibrate.ANCHOR_CREDIT ** exponent <= calibrate.OFF_TOPIC_CEILING
    mapped = replace(cal, score_exponent=exponent)
    grades = [s.grade for s in generous]
    assert calibrate.pearson([calibrate.predict(s, mapped) for s in generous], grades) > calibrate.pearson(
        [calibrate.predict(s, cal) for s in generous], grades)
    assert mapped.score(0.3) < mapped.score(0.31) and mapped.score(0.0) == 0 and mapped.score(1.0) == 1


def test_refits_hold_out_whole_questions_in_several_splits():
    samples = _synthetic()
    fits = calibrate.refits(samples, folds=4, splits=2)
    questions = {s.question for s in samples}
    for split in (0, 1):
        folds = [r.held_out for r in fits if r.split == split]
        assert len(folds) == 4 and set().union(*folds) == questions and sum(map(len, folds)) == len(questions)
    assert [r.held_out for r in fits if r.split == 0] != [r.held_out for r in fits if r.split == 1]
    for r in fits:
        assert r.calibration.fitted_on["questions"] == len(questions - r.held_out)  # fitted without them
    for oof in calibrate.out_of_fold(samples, fits):
        assert calibrate.pearson(oof, [s.grade for s in samples]) > 0.9


def _auc(part, scores):
    pos = [x for s, x in zip(part, scores) if s.grade >= 0.5]
    neg = [x for s, x in zip(part, scores) if s.grade < 0.5]
    return {"auc": sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))}


def test_held_out_figures_count_what_unseen_questions_cost_not_how_the_folds_scales_differ():
    samples = _synthetic()
    full = calibrate.fit(samples)
    shipped = _auc(samples, [calibrate.predict(s, full) for s in samples])["auc"]
    questions = sorted({s.question for s in samples})
    # two folds whose calibrations rank answers as the full fit does, one of them on a higher scale
    higher = replace(full, full=replace(full.full, bias=full.full.bias + 3))
    same_order = [calibrate.Refit(0, frozenset(questions[:6]), higher),
                  calibrate.Refit(0, frozenset(questions[6:]), full)]
    assert calibrate.held_out(samples, same_order, full, _auc)[0]["auc"] == pytest.approx(shipped)
    pooled = _auc(samples, calibrate.out_of_fold(samples, same_order)[0])["auc"]
    assert pooled < shipped - 0.01  # pooling counts the difference in scale as misranking
    # a fold whose calibration ignores the signal that carries its questions' grades loses
    blind = replace(full, full=Fusion(w_sim=0.0, w_judge=1.0, bias=0.0), judge_skip_similarity=None)
    worse = [calibrate.Refit(0, frozenset(questions[:6]), blind), same_order[1]]
    assert calibrate.held_out(samples, worse, full, _auc)[0]["auc"] < shipped - 0.05


def test_thresholds_are_ordered_and_inside_the_unit_interval():
    samples = _synthetic()
    fitted = calibrate.fit_thresholds(samples, calibrate.fit(samples))
    assert 0 < fitted.partial < fitted.covered < 1


def test_calibration_file_round_trip(tmp_path):
    # the share of the question's direction changes what is measured: a fit keeps the one it starts from
    cal = calibrate.fit(_synthetic(60), replace(Calibration(), question_projection=0.5))
    path = tmp_path / "cal.json"
    calibration.save(cal, path)
    loaded = calibration.load(path, "tiny")
    assert loaded.full == cal.full and loaded.covered == cal.covered and loaded.source == "cal.json"
    assert loaded.question_projection == 0.5


def test_a_calibration_for_other_signals_says_to_refit_and_a_fit_starts_from_the_defaults(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"full": {"w_sim": 4.0, "w_judge": 1.2, "bias": -3.9}}))  # version 1: no field
    with pytest.raises(InputError, match="old.json is for version 1 .* this is version 2.*interviewer calibrate"):
        calibration.load(path, "standard")
    path.write_text(json.dumps({"version": 2, "full": {"w_sim": 4.0, "w_judge": 1.2, "w_holistic": 0.1}}))
    with pytest.raises(InputError, match="old.json: full .*w_holistic.*interviewer calibrate"):
        calibration.load(path, "standard")


def test_judge_evidence_is_measured_between_the_null_and_the_reference_answer():
    evidence = calibration.judge_evidence
    assert evidence(0.3, 0.3, 0.9) == 0.0
    assert evidence(0.9, 0.3, 0.9) == pytest.approx(1.0)
    assert 0 < evidence(0.6, 0.3, 0.9) < 1 and evidence(0.1, 0.3, 0.9) < 0
    # the same step in log-odds counts for more where the judge is less sure of the reference
    assert evidence(0.6, 0.3, 0.7) > evidence(0.6, 0.3, 0.95)
    # a reference the judge does not believe does not blow the scale up; the ends are clipped
    assert evidence(0.99, 0.3, 0.3) == calibration.EVIDENCE_CLIP
    assert evidence(1e-9, 0.5, 0.9) == -calibration.EVIDENCE_CLIP


def test_stratified_sample_spans_the_grades():
    rows = calibrate.read_rows(EVAL / "mohler.dev.jsonl")
    sample = calibrate.stratified(rows, 40)
    grades = [r["score"] for r in sample]
    assert len(sample) == 40 and min(grades) <= 1 and max(grades) == 5


def test_bad_labelled_rows_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"doc_question": "Q1", "answer": "x", "score": 1, "max_score": 5}) + "\n{oops\n")
    with pytest.raises(Exception, match="bad.jsonl:2"):
        calibrate.read_rows(path)


def test_a_fit_stops_when_the_judge_cannot_run(settings):
    from interviewer.embed import HashingEmbedder
    from interviewer.errors import ModelUnavailable
    from interviewer.judge import KeywordJudge
    from interviewer.service import Engine

    rows = calibrate.stratified(calibrate.read_rows(EVAL / "mohler.dev.jsonl"), 5)
    working = Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge())
    judged = [s.judge for s in calibrate.measure(working, rows, EVAL / "mohler.dev.md") if not s.gate]
    assert judged and all(judged)
    broken = Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge(fail=True))
    with pytest.raises(ModelUnavailable, match="judge could not run on mohler.dev.md"):
        calibrate.measure(broken, rows, EVAL / "mohler.dev.md")  # not a fit on the embedding alone
    assert calibrate.measure(broken, rows, EVAL / "mohler.dev.md", use_judge=False)


@pytest.mark.real
def test_calibrate_command_writes_a_file(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    rows = calibrate.stratified(calibrate.read_rows(EVAL / "beetle.dev.jsonl"), 12)
    data = tmp_path / "beetle.dev.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "cal.json"
    cmd = [str(Path(sys.executable).parent / "interviewer"), "calibrate", str(data), "--doc",
           str(EVAL / "beetle.dev.md"), "--profile", "tiny", "--out", str(out), "--cache", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for column in ("r before", "r held out", "RMSE after", "score exponent"):
        assert column in proc.stdout
    assert out.exists()
    assert json.loads(out.read_text())["fitted_on"]["answers"] == 12
