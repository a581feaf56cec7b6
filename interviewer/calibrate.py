"""Fit the fusion of the two signals on human-graded answers (`interviewer calibrate`).

Input rows are JSONL in the format of shared/eval: `doc_question`, `answer`, `score`,
`max_score` (other fields ignored). Signals are measured once per answer (the judge through a
cache), then the fusion weights are fitted by least squares on the normalised grade, with
cross-validation grouped by question, never by answer.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import grading
from .calibration import Calibration, Fusion, judge_evidence
from .errors import InputError, ModelUnavailable


@dataclass(frozen=True)
class Sample:
    """One labelled answer with its measured signals."""

    id: str
    question: str
    grade: float  # 0..1
    gate: str | None
    weights: tuple[float, ...]
    sims: tuple[float, ...]
    judge: tuple[float, ...] | None  # judge evidence per key point (calibration.judge_evidence)
    answer_words: int
    negation_differs: tuple[bool, ...] = ()  # per key point (EmbeddingSignals.kp_negation_differs); () = none


def read_rows(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                float(row["score"]), float(row["max_score"]), row["doc_question"], row["answer"]
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{path}:{n}: expected JSON with doc_question, answer, score, max_score ({exc})")
            rows.append(row)
    return rows


def stratified(rows: list[dict], limit: int | None, seed: int = 0) -> list[dict]:
    """At most `limit` rows, spread evenly over the grade range."""
    if not limit or limit >= len(rows):
        return rows
    rng = random.Random(seed)
    ordered = sorted(rows, key=lambda r: (r["score"] / r["max_score"], rng.random()))
    step = len(ordered) / limit
    return [ordered[int(i * step)] for i in range(limit)]


def measure(engine, rows: list[dict], doc: Path, *, use_judge: bool = True, progress=None) -> list[Sample]:
    """Signals for each row (rows grouped by question so the judge reuses its prompt prefix)."""
    rubric, topic = engine.rubric(doc), engine.document(doc).title
    out = []
    ordered = sorted(rows, key=lambda r: r["doc_question"])
    for i, row in enumerate(ordered, 1):
        qr = rubric.for_question(row["doc_question"])
        prepared = grading.Prepared.of(row["answer"])
        gate = grading.text_gate(qr, prepared, engine.settings.max_answer_words)
        emb = None if gate else engine.embedding_signals(qr, prepared.clean)
        if emb is not None:
            gate = grading.similarity_gate(qr, prepared.clean, emb, engine.calibration, topic)
        judge = None
        if use_judge and emb is not None:
            signals, status = engine.judge_signals(qr, prepared.clean, emb, every_point=True)
            if status.startswith("unavailable"):  # a fit or a figure on the embedding alone would pass for both
                raise ModelUnavailable(f"the judge could not run on {doc.name} {row['doc_question']}: {status}")
            if signals is not None:
                judge = tuple(judge_evidence(*kp) for kp in signals.key_points)
                gate = gate or grading.wording_gate(prepared.clean, signals, engine.calibration)
        out.append(Sample(
            id=str(row.get("id", i)), question=qr.question.id,
            grade=float(row["score"]) / float(row["max_score"]), gate=gate.code if gate else None,
            weights=tuple(kp.weight for kp in qr.key_points),
            sims=tuple(emb.kp_sim) if emb else tuple(0.0 for _ in qr.key_points),
            judge=judge, answer_words=len(prepared.clean.split()),
            negation_differs=tuple(emb.kp_negation_differs) if emb else (),
        ))
        if progress:
            progress(i, len(ordered))
    return out


def predict(sample: Sample, cal: Calibration, *, signals: str = "both") -> float:
    """The 0..1 score the engine would give (before misconception penalties); `signals`: "both",
    or one signal's fusion alone, "sim" or "judge"."""
    return cal.score(coverage(sample, cal, signals=signals))


def coverage(sample: Sample, cal: Calibration, *, signals: str = "both") -> float:
    """The weighted mean credit of the answer's key points."""
    if sample.gate:
        return 0.0
    if signals == "sim":
        credits = [cal.embedding_only.credit(sim) for sim in sample.sims]
    elif signals == "judge":
        credits = [cal.judge_only.credit(0.0, sample.judge[k] if sample.judge else 0.0)
                   for k in range(len(sample.sims))]
    else:
        credits = _credits(sample, cal)
    return float(np.dot(sample.weights, credits) / sum(sample.weights))


def _credits(sample: Sample, cal: Calibration) -> list[float]:
    """Each key point's credit from both signals, as grading gives it."""
    return [cal.credit(sim, sample.judge[k] if sample.judge else None, _negated(sample, k))
            for k, sim in enumerate(sample.sims)]


def confidence(sample: Sample, cal: Calibration) -> float:
    """The grade's confidence as grading computes it (`grading.confidence`; 1 for a gated answer)."""
    if sample.gate:
        return 1.0
    credits = _credits(sample, cal)
    disagreements = [grading.disagreement(cal, sim, sample.judge[k]) for k, sim in enumerate(sample.sims)
                     if sample.judge and cal.asks_judge(sim, _negated(sample, k))]
    return grading.confidence(credits, disagreements, judged=sample.judge is not None)


def _negated(sample: Sample, k: int) -> bool:
    return k < len(sample.negation_differs) and sample.negation_differs[k]


GRID = {
    "w_sim": (2, 3, 4, 6, 8, 10, 12),
    "w_judge": (0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6),
}
# The judge reads the answer as part of its prompt, so it is the signal an answer can try to sway
# (injections, look-alike wording): of weights whose mean r is within this of the best, the fit
# takes the smallest judge weight.
FUSION_TOLERANCE = 0.001
# The absolute scale: a key point whose best-matching sentence is unrelated (cosine 0.25, the
# level of off-topic text) and on which the judge is no surer than for "I don't know." earns 5%;
# one stated as in the reference (cosine 1, the judge as sure as for the reference answer) earns
# at least 90%. Pearson r does not see the scale: without the second anchor, weights that only
# rank answers could squeeze every credit towards zero.
ANCHOR_SIM, ANCHOR_CREDIT = 0.25, 0.05
TOP_SIM, TOP_JUDGE, TOP_CREDIT = 1.0, 1.0, 0.9
# Score exponents tried, from 1 down to the lowest that keeps an answer whose every key point is
# at the anchor (an unrelated answer) at or below 1/10, the most an off-topic answer may score.
OFF_TOPIC_CEILING = 0.1
EXPONENT_GRID = tuple(x for x in (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)
                      if ANCHOR_CREDIT ** x <= OFF_TOPIC_CEILING)
# Cosines from which a key point may be left to the embedding alone (None: always ask the judge).
SKIP_GRID = (None, 0.9, 0.85, 0.8, 0.75, 0.7)
SKIP_TOLERANCE = 0.001  # mean r a lower cut-off, which saves judge work, may cost
HELD_OUT_SPLITS = 8  # random question splits the held-out figures are averaged over


def _group(sample: Sample) -> str:
    return sample.question.split(":")[0] if ":" in sample.question else ""


def _judged_groups(samples: list[Sample]) -> list[list[Sample]]:
    """The ungated, judged answers per data set (at least 5 each): the fits maximise mean r over these."""
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        if not s.gate and s.judge is not None:
            groups.setdefault(_group(s), []).append(s)
    return [g for g in groups.values() if len(g) >= 5]


def fit_fusion(samples: list[Sample], start: Fusion) -> Fusion:
    """A few well-founded parameters, chosen by grid search rather than fitted per question:
    the weights that maximise the mean Pearson r over the data sets (each grades on its own
    scale) among those that keep the top of the scale (TOP_*), and of near ties
    (FUSION_TOLERANCE) the one with the smallest judge weight; the bias then follows from the
    anchor (an unrelated answer earns ~nothing), because human-graded answers, nearly all on
    topic, say little about where zero should be."""
    groups = _judged_groups(samples)
    if not groups:
        return start
    feats = [_features(g) for g in groups]
    r = {w: np.mean([_r(_scores(f, w, _anchor_bias(w)), f[-1]) for f in feats])
         for w in itertools.product(GRID["w_sim"], GRID["w_judge"])
         if _keeps_top(w)}
    if not r:
        return start
    best = max(r.values())
    weights = min((w for w in r if r[w] >= best - FUSION_TOLERANCE), key=lambda w: (w[1], w[0]))
    return Fusion(*(float(x) for x in weights), bias=round(_anchor_bias(weights), 4))


def fit_alone(samples: list[Sample], signal: str, full: Fusion, start: Fusion) -> Fusion:
    """One signal's fusion, for when the other is missing (`signal`: "sim" or "judge"): the weight
    and bias whose credits come closest (least squares) to the full fusion's on the same key
    points, so that a grade without the judge is on the same scale as one with it."""
    usable = [s for s in samples if not s.gate and s.judge is not None]
    x = np.array([(sim, s.judge[k]) for s in usable for k, sim in enumerate(s.sims)], dtype=float)
    if len(x) < 5:
        return start
    target = _sigmoid(x @ np.array([full.w_sim, full.w_judge]) + full.bias)
    col = 0 if signal == "sim" else 1
    weights, biases = np.arange(0.25, 16.01, 0.25), np.arange(-12.0, 4.0, 0.05)
    err = np.array([((_sigmoid(w * x[:, col, None] + biases) - target[:, None]) ** 2).mean(axis=0)
                    for w in weights])  # weights x biases
    i, j = np.unravel_index(np.argmin(err), err.shape)
    w, bias = float(weights[i]), round(float(biases[j]), 4)
    return Fusion(w, 0.0, bias) if col == 0 else Fusion(0.0, w, bias)


def _sigmoid(x):
    return 1 / (1 + np.exp(-np.clip(x, -30, 30)))


def _keeps_top(weights) -> bool:
    """Whether weights (w_sim, w_judge), with the anchor's bias, give a point stated as in the
    reference at least TOP_CREDIT."""
    return _sigmoid(weights[0] * TOP_SIM + weights[1] * TOP_JUDGE + _anchor_bias(weights)) >= TOP_CREDIT


def _anchor_bias(weights) -> float:
    """The bias that gives the anchor (cosine ANCHOR_SIM, no judge evidence) ANCHOR_CREDIT."""
    return math.log(ANCHOR_CREDIT / (1 - ANCHOR_CREDIT)) - weights[0] * ANCHOR_SIM


def _features(samples: list[Sample]):
    """Per key point: sim, judge, owner index, weight share; and the grades."""
    rows = []
    for idx, s in enumerate(samples):
        total = sum(s.weights)
        for k, sim in enumerate(s.sims):
            rows.append((sim, s.judge[k] if s.judge else 0.0, idx, s.weights[k] / total))
    a = np.array(rows, dtype=float)
    return a[:, :2], a[:, 2].astype(int), a[:, 3], np.array([s.grade for s in samples])


def _scores(features, weights, bias):
    x, owner, share, grades = features
    credit = _sigmoid(x @ np.asarray(weights) + bias)
    return np.bincount(owner, weights=share * credit, minlength=len(grades))


def _r(pred, grades) -> float:
    return -1.0 if pred.std() == 0 else float(np.corrcoef(pred, grades)[0, 1])


def fit(samples: list[Sample], base: Calibration | None = None, name: str = "fitted") -> Calibration:
    base = base or Calibration()
    full = fit_fusion(samples, base.full)
    fitted = replace(
        base,
        full=full,
        embedding_only=fit_alone(samples, "sim", full, base.embedding_only),
        judge_only=fit_alone(samples, "judge", full, base.judge_only),
        source=name,
        fitted_on={"answers": len(samples), "questions": len({s.question for s in samples})},
    )
    fitted = replace(fitted, judge_skip_similarity=fit_skip(samples, fitted))
    return replace(fitted, score_exponent=fit_exponent(samples, fitted))


def fit_skip(samples: list[Sample], cal: Calibration) -> float | None:
    """The cosine from which the embedding decides a key point alone, without asking the judge:
    of those whose mean r over the data sets is within SKIP_TOLERANCE of the best, the lowest."""
    groups = _judged_groups(samples)
    if not groups:
        return cal.judge_skip_similarity
    r = {}
    for cut in SKIP_GRID:
        trial = replace(cal, judge_skip_similarity=cut)
        r[cut] = np.mean([_r(np.array([predict(s, trial) for s in g]), np.array([s.grade for s in g]))
                          for g in groups])
    best = max(r.values())
    return [cut for cut in SKIP_GRID if r[cut] >= best - SKIP_TOLERANCE][-1]


def fit_exponent(samples: list[Sample], cal: Calibration) -> float:
    """The score exponent. It sets the scale, not the order, so it is the one parameter fitted on the
    error on the teachers' scale: the exponent of EXPONENT_GRID with the lowest mean RMSE over the
    data sets, the one closest to 1 on a tie."""
    groups = _judged_groups(samples)
    if not groups:
        return cal.score_exponent
    grades = [np.array([s.grade for s in g]) for g in groups]
    covered = [np.array([coverage(s, cal) for s in g]) for g in groups]
    error = {x: np.mean([rmse(c ** x, y) for c, y in zip(covered, grades)]) for x in EXPONENT_GRID}
    return min(EXPONENT_GRID, key=lambda x: (round(error[x], 6), -x))


@dataclass(frozen=True)
class Refit:
    """A calibration fitted without some whole questions (`held_out`), in split `split`."""

    split: int
    held_out: frozenset[str]
    calibration: Calibration


def refits(samples: list[Sample], base: Calibration | None = None, folds: int = 5,
           splits: int = HELD_OUT_SPLITS) -> list[Refit]:
    """For each of `splits` random splits of the questions into `folds` folds (split 0 shuffles with
    seed 0, and so on), one calibration per fold, fitted on the other folds' questions."""
    questions = sorted({s.question for s in samples})
    out = []
    for seed in range(splits):
        shuffled = questions[:]
        random.Random(seed).shuffle(shuffled)
        for f in range(min(folds, len(shuffled))):
            held = frozenset(shuffled[f::folds])
            out.append(Refit(seed, held, fit([s for s in samples if s.question not in held], base)))
    return out


def out_of_fold(samples: list[Sample], fits: list[Refit]) -> list[list[float]]:
    """Per split, every answer's score from the calibration that did not see its question."""
    preds = {}
    for r in fits:
        row = preds.setdefault(r.split, [0.0] * len(samples))
        for i, s in enumerate(samples):
            if s.question in r.held_out:
                row[i] = predict(s, r.calibration)
    return [preds[k] for k in sorted(preds)]


def held_out(samples: list[Sample], fits: list[Refit], full: Calibration,
             figures: Callable[[list[Sample], list[float]], dict[str, float]]) -> list[dict[str, float]]:
    """Per split, each of `figures` (answers, scores -> {name: value}) as it would be for questions
    the calibration has not seen: its value with `full` (fitted on every question) plus what the
    folds lose, each fold's figure on its held-out questions with its own calibration minus the
    same figure on the same answers with `full`, weighted by answers.

    Pooling the out-of-fold scores of all folds into one figure (`out_of_fold`) instead ranks
    answers scored by five calibrations against each other, which real grading, with one
    calibration, never does; on the dev data that mixing costs more than the unseen questions do
    (bench/HISTORY.md, session 16)."""
    shared_scores = [predict(s, full) for s in samples]
    base = figures(samples, shared_scores)
    out = []
    for split in sorted({r.split for r in fits}):
        losses: dict[str, list[tuple[float, int]]] = {}
        for r in (r for r in fits if r.split == split):
            held = [i for i, s in enumerate(samples) if s.question in r.held_out]
            if not held:
                continue
            part = [samples[i] for i in held]
            own = figures(part, [predict(s, r.calibration) for s in part])
            shared = figures(part, [shared_scores[i] for i in held])
            for k, v in own.items():
                if not (math.isnan(v) or math.isnan(shared[k])):
                    losses.setdefault(k, []).append((v - shared[k], len(part)))
        out.append({k: v + float(np.average([d for d, _ in losses[k]], weights=[n for _, n in losses[k]]))
                    if k in losses else v for k, v in base.items()})
    return out


def pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def rmse(a, b) -> float:
    """Root mean squared error on the 0..1 scale."""
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def samples_to_json(samples: list[Sample]) -> list[dict]:
    return [s.__dict__ for s in samples]


def _youden(scores: list[float], labels: list[bool]) -> float | None:
    """The cut on `scores` that best separates the labels (max TPR - FPR)."""
    pos, neg = sum(labels), len(labels) - sum(labels)
    if not pos or not neg:
        return None
    best, cut = -1.0, None
    for t in sorted(set(round(s, 3) for s in scores)):
        tpr = sum(1 for s, y in zip(scores, labels) if y and s >= t) / pos
        fpr = sum(1 for s, y in zip(scores, labels) if not y and s >= t) / neg
        if tpr - fpr > best:
            best, cut = tpr - fpr, t
    return cut


def fit_thresholds(samples: list[Sample], cal: Calibration) -> Calibration:
    """Covered / partial cut-offs from answers with a single key point, whose grade is that point's."""
    single = [s for s in samples if len(s.sims) == 1 and not s.gate and s.judge is not None]
    credits = [coverage(s, cal) for s in single]
    covered = _youden(credits, [s.grade >= 0.8 for s in single])
    partial = _youden(credits, [s.grade >= 0.4 for s in single])
    if covered is None or partial is None:
        return cal
    partial = min(partial, covered - 0.05)
    return replace(cal, covered=round(covered, 3), partial=round(max(0.05, partial), 3))


def pairs_for(files: list[Path], docs: list[Path] | None) -> list[tuple[Path, Path]]:
    """Pair each labelled file with its document (default: same name with .md)."""
    if docs and len(docs) not in (1, len(files)):
        raise InputError(f"give one --doc, or one per file ({len(files)} files, {len(docs)} --doc)")
    out = []
    for i, f in enumerate(files):
        doc = docs[i if len(docs) > 1 else 0] if docs else f.with_suffix(".md")
        if not doc.exists():
            raise InputError(f"no question document for {f}: expected {doc}; pass --doc")
        out.append((f, doc))
    return out


def run(engine, pairs: list[tuple[Path, Path]], limit: int | None = None, progress=None):
    """Measure, fit on everything, and report per file r before / after / cross-validated, and the
    RMSE (0..1 scale) before / after."""
    per_file, everything = {}, []
    for data, doc in pairs:
        rows = stratified(read_rows(data), limit)
        samples = measure(engine, rows, doc, progress=progress)
        # question ids repeat across documents: make them unique for grouping
        samples = [replace(s, question=f"{data.stem}:{s.question}") for s in samples]
        per_file[data.name] = samples
        everything += samples
    before = engine.calibration
    after = fit_thresholds(everything, fit(everything, before, name="calibration"))
    after = replace(after, fitted_on={"answers": len(everything),
                                      "questions": len({s.question for s in everything}),
                                      "files": sorted(per_file)})
    fits = refits(everything, base=before)

    def pearson_r(part, scores):
        return {"r": pearson(scores, [s.grade for s in part])}

    report = {}
    for name, samples in per_file.items():
        grades = [s.grade for s in samples]
        old, new = [predict(s, before) for s in samples], [predict(s, after) for s in samples]
        report[name] = {
            "answers": len(samples),
            "before": pearson(old, grades),
            "after": pearson(new, grades),
            "held_out": float(np.mean([h["r"] for h in held_out(samples, fits, after, pearson_r)])),
            "rmse_before": rmse(old, grades),
            "rmse_after": rmse(new, grades),
        }
    return after, report


def cached_engine(settings, profile: str, cache_dir: Path, *, calibration_=None):
    """An Engine whose judge answers from a SQLite cache keyed by model sha256 and prompt. Its
    calibration, the starting point of a fit, is the current one, or the built-in defaults where
    the current one was fitted for another version of the signals (a fit is what it needs)."""
    from . import calibration, models
    from .judge import CachingJudge, LlamaJudge
    from .service import Engine

    spec = models.profile(settings, profile).judge
    digest = models.verify(spec, settings.data_dir)
    inner = LlamaJudge(spec.path, digest, threads=settings.threads, n_ctx=settings.judge_context)
    judge = CachingJudge(inner, cache_dir / f"judge-{digest[:12]}.sqlite")
    if calibration_ is None:
        try:
            calibration_ = calibration.load(settings.calibration, profile)
        except InputError:
            calibration_ = Calibration()
    return Engine(settings, profile=profile, judge=judge, calibration_=calibration_)
