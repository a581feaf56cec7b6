"""Agreement with human graders on shared/eval, per data set and model profile.

    .venv/bin/python bench/quality.py [--profile tiny standard] [--limit 60 mohler=100] [--datasets mohler ...] [--fit]

Prints Pearson/Spearman r, RMSE and quadratic weighted kappa on each data set's own scale,
accuracy / macro-F1 / ROC AUC for the correct-incorrect sets, beside two baselines (answer
length, TF-IDF cosine to the reference) and each signal alone. Judge outputs are cached in
bench/cache/, so a re-run costs seconds. Results: bench/results/quality-<profile>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interviewer import calibrate, calibration  # noqa: E402
from interviewer.config import Settings  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
CACHE = ROOT / "bench" / "cache"
RESULTS = ROOT / "bench" / "results"
SHIPPED, HELD_OUT = "engine (shipped calibration)", "engine (refit, questions held out)"
POOLED = "engine (refit, held out, folds pooled)"
DATASETS = {  # name: (scale step for kappa, binary?)
    "mohler": (0.5, False),
    "saf_en": (0.25, False),
    "scientsbank": (1.0, True),
    "beetle": (1.0, True),
}


def tfidf_cosine(answers: list[str], references: list[str]) -> list[float]:
    tok = lambda s: re.findall(r"[a-z0-9]+", s.lower())  # noqa: E731
    docs = [tok(a) for a in answers] + [tok(r) for r in references]
    df = Counter(w for d in docs for w in set(d))
    idf = {w: math.log((1 + len(docs)) / (1 + c)) + 1 for w, c in df.items()}

    def vec(d):
        tf = Counter(d)
        v = {w: c * idf[w] for w, c in tf.items()}
        n = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / n for w, x in v.items()}

    return [sum(x * vec(tok(r)).get(w, 0.0) for w, x in vec(tok(a)).items()) for a, r in zip(answers, references)]


def qwk(y_true, y_pred, step: float) -> float:
    a = np.round(np.asarray(y_true) / step).astype(int)
    b = np.round(np.asarray(y_pred) / step).astype(int)
    n = int(max(a.max(), b.max())) + 1
    observed = np.zeros((n, n))
    for i, j in zip(a, b):
        observed[i, j] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    weights = np.array([[(i - j) ** 2 for j in range(n)] for i in range(n)]) / max(1, (n - 1) ** 2)
    denom = (weights * expected).sum()
    return float(1 - (weights * observed).sum() / denom) if denom else float("nan")


def auc(y, s) -> float:
    y, s = np.asarray(y), np.asarray(s, float)
    npos, nneg = int((y == 1).sum()), int((y == 0).sum())
    if not npos or not nneg:
        return float("nan")
    ranks = rankdata(s)  # ties get their average rank
    return float((ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def question_interval(samples, scores, binary: bool, resamples: int = 1000) -> tuple[float, float]:
    """95% interval of the engine's r (AUC for a correct/incorrect set) over other questions like
    these: the figure over resamples of whole questions, drawn with replacement."""
    by_question: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_question.setdefault(s.question, []).append(i)
    groups = list(by_question.values())
    grades, scores = np.array([s.grade for s in samples]), np.asarray(scores, float)
    rng = np.random.default_rng(0)
    values = []
    for _ in range(resamples):
        idx = np.concatenate([groups[k] for k in rng.integers(0, len(groups), len(groups))])
        v = auc(grades[idx] >= 0.5, scores[idx]) if binary else calibrate.pearson(scores[idx], grades[idx])
        if not math.isnan(v):
            values.append(v)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def metrics(grades, pred, scale: float, step: float, binary: bool) -> dict:
    grades, pred = np.asarray(grades, float), np.asarray(pred, float)
    out = {"pearson": calibrate.pearson(pred, grades), "spearman": float(spearmanr(pred, grades).statistic)}
    if binary:
        y = (grades >= 0.5).astype(int)
        yhat = (pred >= 0.5).astype(int)
        f1s = []
        for c in (0, 1):
            tp = int(((yhat == c) & (y == c)).sum())
            prec = tp / max(1, int((yhat == c).sum()))
            rec = tp / max(1, int((y == c).sum()))
            f1s.append(0 if tp == 0 else 2 * prec * rec / (prec + rec))
        out.update(accuracy=float((y == yhat).mean()), macro_f1=float(np.mean(f1s)), auc=auc(y, pred))
    else:
        out.update(rmse=calibrate.rmse(pred * scale, grades * scale),
                   qwk=qwk(grades * scale, pred * scale, step))
    return out


def run(profile: str, names: list[str], limits: dict[str, int | None], settings: Settings,
        fit: bool = False) -> dict:
    engine = calibrate.cached_engine(settings, profile, CACHE)
    measured = {}
    for name in names:
        rows = calibrate.stratified(calibrate.read_rows(EVAL / f"{name}.dev.jsonl"), limits.get(name))
        t0 = time.time()

        def progress(i, n, name=name, t0=t0):
            if i % 25 == 0 or i == n:
                print(f"  {profile}/{name}: {i}/{n} answers, {time.time() - t0:.0f}s", file=sys.stderr)

        samples = calibrate.measure(engine, rows, EVAL / f"{name}.dev.md", progress=progress)
        # question ids repeat across documents: make them unique for grouping
        samples = [replace(s, question=f"{name}:{s.question}") for s in samples]
        measured[name] = (rows, samples, round(time.time() - t0, 1))
    everything = [s for _, samples, _ in measured.values() for s in samples]
    cal = engine.calibration
    if fit:  # as `interviewer calibrate` does, on these samples: the file grading then uses
        cal = calibrate.fit_thresholds(everything, calibrate.fit(everything, cal, name="calibration"))
        cal = replace(cal, fitted_on={"answers": len(everything), "questions": len({s.question for s in everything}),
                                      "files": sorted(f"{name}.dev.jsonl" for name in measured)})
        calibration.save(cal, calibration.default_path(profile))
        cal = calibration.load(None, profile)
    report = {"profile": profile, "calibration": cal.id, "limits": limits, "datasets": {}}
    # Held-out estimates: the fusion refitted with whole questions left out, all data sets together,
    # for several random splits of the questions into folds (calibrate.held_out); each figure is the
    # mean over the splits.
    fits = calibrate.refits(everything, base=cal)
    full = calibrate.fit(everything, cal)
    for name, (rows, samples, seconds) in measured.items():
        step, binary = DATASETS[name]
        by_id = {str(r.get("id")): r for r in rows}
        ordered = [by_id[s.id] for s in samples]
        grades = [s.grade for s in samples]
        scale = float(ordered[0]["max_score"])
        systems = {
            SHIPPED: [calibrate.predict(s, cal) for s in samples],
            "embedding only": [calibrate.predict(s, cal, signals="sim") for s in samples],
            "judge only": [calibrate.predict(s, cal, signals="judge") for s in samples],
            "baseline: answer length": _minmax([len(r["answer"].split()) for r in ordered]),
            "baseline: TF-IDF cosine": tfidf_cosine([r["answer"] for r in ordered],
                                                    [r["reference_answer"] for r in ordered]),
        }
        results = {k: metrics(grades, v, scale, step, binary) for k, v in systems.items()}

        def figures(part, scores, scale=scale, step=step, binary=binary):
            return metrics([s.grade for s in part], scores, scale, step, binary)

        per_split = calibrate.held_out(samples, fits, full, figures)
        pooled = [metrics(grades, oof, scale, step, binary) for oof in calibrate.out_of_fold(samples, fits)]
        report["datasets"][name] = {
            "answers": len(samples),
            "gated": dict(Counter(s.gate for s in samples if s.gate)),
            "seconds": seconds,
            "systems": {SHIPPED: results.pop(SHIPPED), HELD_OUT: _mean(per_split), POOLED: _mean(pooled), **results},
            "held_out_sd": {k: float(np.std([m[k] for m in per_split])) for k in per_split[0]},
            "pooled_sd": {k: float(np.std([m[k] for m in pooled])) for k in pooled[0]},
            "question_interval": question_interval(samples, systems[SHIPPED], binary),
            "review": review(samples, systems[SHIPPED], cal, scale, binary),
        }
        (CACHE / f"samples-{profile}-{name}.json").write_text(json.dumps(calibrate.samples_to_json(samples)))
    return report


def review(samples, scores, cal, scale: float, binary: bool) -> dict:
    """How well `needs_review` (confidence below the calibration's cut) finds the grades that are
    off: the share flagged, and the error of flagged and other answers (correct/incorrect sets:
    the share on the wrong side of 0.5; graded sets: mean absolute error on the set's scale)."""
    flagged = np.array([calibrate.confidence(s, cal) < cal.review_confidence for s in samples])
    grades, scores = np.array([s.grade for s in samples]), np.asarray(scores, float)
    error = ((scores >= 0.5) != (grades >= 0.5)).astype(float) if binary else np.abs(scores - grades) * scale
    return {"flagged": float(flagged.mean()),
            "error_flagged": float(error[flagged].mean()) if flagged.any() else float("nan"),
            "error_rest": float(error[~flagged].mean()) if (~flagged).any() else float("nan")}


def _mean(per_split: list[dict]) -> dict:
    return {k: float(np.mean([m[k] for m in per_split])) for k in per_split[0]}


def _minmax(values):
    v = np.asarray(values, float)
    return list((v - v.min()) / (v.max() - v.min() or 1.0))


def table(report: dict) -> str:
    limits = ", ".join(f"{k} {v or 'all'}" for k, v in report["limits"].items())
    lines = [f"### Profile `{report['profile']}` (calibration {report['calibration']}; answers per data set: "
             f"{limits}, stratified by grade)", ""]
    cols = ["pearson", "spearman", "rmse", "qwk", "accuracy", "macro_f1", "auc"]
    lines.append("| data set | system | n | " + " | ".join(cols) + " |")
    lines.append("|---|---|---|" + "---|" * len(cols))
    for name, d in report["datasets"].items():
        for system, m in d["systems"].items():
            cells = [f"{m[c]:.3f}" if c in m and not math.isnan(m[c]) else "" for c in cols]
            lines.append(f"| {name} | {system} | {d['answers']} | " + " | ".join(cells) + " |")

    def spread(key):
        return ", ".join(f"{name} {d[key]['auc' if 'auc' in d[key] else 'pearson']:.3f}"
                         for name, d in report["datasets"].items())

    lines += ["", f"Held out: the calibration refitted without whole questions, {calibrate.HELD_OUT_SPLITS} random "
                  "splits of the questions into 5 folds. “Questions held out”: the figure of the fit on every answer "
                  "here (the shipped calibration, when it was fitted on them) plus what each fold's figure on its "
                  "own questions loses with the fold's calibration (standard deviation "
                  f"over the splits, r or AUC: {spread('held_out_sd')}). “Folds pooled”: every answer scored by "
                  "its fold's calibration and the five folds ranked together, which also counts the five "
                  f"calibrations' differences in scale against each other ({spread('pooled_sd')}).",
              "", "On other questions like these the figures would differ more than with the split: the engine's "
                  "r or AUC over resamples of whole dev questions, 95%: "
                  + ", ".join(f"{name} {d['question_interval'][0]:.2f}–{d['question_interval'][1]:.2f}"
                              for name, d in report["datasets"].items()) + ".",
              "", "Flagged for review (confidence below the calibration's cut; error of flagged / other answers: "
                  "wrong side of 0.5 for correct/incorrect sets, mean absolute error on the set's scale for graded "
                  "ones): " + ", ".join(f"{name} {d['review']['flagged']:.0%} of answers, "
                                        f"{d['review']['error_flagged']:.2f} / {d['review']['error_rest']:.2f}"
                                        for name, d in report["datasets"].items()) + "."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", nargs="+", default=["tiny", "standard"])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--limit", nargs="+", default=[],
                    help="stratified sample per data set: N for all, or name=N (e.g. mohler=100 60)")
    ap.add_argument("--fit", action="store_true", help="fit the calibration on these samples, write "
                    "models/calibration-<profile>.json (what grading uses) and report with it")
    args = ap.parse_args()
    limits = {name: None for name in args.datasets}
    for item in sorted(args.limit, key=lambda x: "=" in x):  # "N" first, then "name=N"
        name, _, n = item.rpartition("=")
        for key in ([name] if name else args.datasets):
            limits[key] = int(n)
    settings = Settings()
    RESULTS.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    for profile in args.profile:
        report = run(profile, args.datasets, limits, settings, fit=args.fit)
        (RESULTS / f"quality-{profile}.json").write_text(json.dumps(report, indent=2))
        (RESULTS / f"quality-{profile}.md").write_text(table(report) + "\n")
        print(table(report))
        print()


if __name__ == "__main__":
    main()
