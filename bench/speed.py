"""Speed: grading latency, batch throughput, cold start, memory and API responsiveness, each
beside its target and beside what the hardware itself can do in the same run.

    .venv/bin/python bench/speed.py                          # tiny and standard: ~4 + ~12 min on 2 quiet cores
    .venv/bin/python bench/speed.py --quick --profiles tiny  # smoke run (~2 min)
    .venv/bin/python bench/speed.py --profiles standard --judge-answers 80 --skip api

What is measured, per model profile:

- Latency of grading one answer: the seed document, the strong/partial/weak answers of
  tests/adversarial/answers.yaml to Q1..Q10, judge on, in steady state: the models are loaded
  and warmed, and every question has been graded once. That first answer per question is
  reported on its own: it also pays for the rubric's embeddings and for the judge's baselines
  (the null and the reference answer; the engine here gets a fresh data directory, so no
  baseline persisted by an earlier run is found). Each grading is on a different question than
  the one before, as in an interview: the
  judge restores that question's saved head (the KV state of the question part of its prompt)
  rather than evaluating it again, as it would after `Engine.prepare`. Before each measured grading the
  answer texts are dropped from the embedder's cache (the rubric's stay), so every answer is
  embedded as a new answer would be and repeated rounds measure the same work. p50/p95 of the
  total, and of its parts from `Engine.last_timings` (embedding, judge, the rest). The same
  answers again with the judge off give the embedding-only latency.
- Batch throughput over /work/shared/eval/mohler.dev.jsonl, run as `interviewer grade ANSWERS`
  runs it (`batch.BatchJob`: rows grouped by question, embeddings prefetched, each record
  appended to the results file), wall time of the whole job: embedding only over
  --batch-answers rows (the dev split has 443; the list is repeated to reach the count), and with
  the judge over --judge-answers rows (up to 10 per question), after one warm-up answer per
  question.
- Cold start: wall time of a fresh `interviewer grade -q Q1 -a ... --json --profile P` process
  (median of 3) and its peak resident memory (os.wait4's rusage of that very child), and
  `interviewer --help` (median of 5). The page cache is warm: this is a fresh process, not a
  fresh boot. The runs share a temporary data directory, so the first computes Q1's baselines
  and prompt head and the later ones read them from the engine's persisted caches;
  each run's time is kept.
- API: a real `interviewer serve` (INTERVIEWER_PROFILE=P, a temporary INTERVIEWER_DATA_DIR that
  links to the assembled models), 20 reader threads reading one question
  (GET /documents/transformers_llms/questions/Q1) back to back on 127.0.0.1 (or --api-think-ms
  apart), first alone, then while 2 grader threads keep POST /grade busy; p50/p99 over the reads
  that had a grading in flight from start to end. The server is always stopped.
- Hardware reference, same run, measured between the gradings so that load coming and going on
  the machine affects both alike: llama.cpp prompt evaluation (tokens/s) of the same judge model
  on the same prompts flattened into one sequence (head + answer + every question; n_batch 512,
  flash attention on, as the engine's context has it: its "auto" turns it on for the CPU, while
  `Llama()` would turn it off; one prompt is also timed with it off), the same 128 tokens
  in llama_decode calls of 16, 32 and 128, and the embedder's encode throughput in sentence-transformers
  itself (sentences/s at batch 64) on the answers' sentences. Judge efficiency = tokens llama.cpp decoded for the measured
  gradings / (their judge seconds x raw tokens/s); embedding efficiency likewise with the
  sentences the embedder encoded. 100% = the engine goes as fast as the hardware on this work;
  the gap is overhead or unfavourable batch shapes. The engine's embedder runs the same model on
  ONNX Runtime, so its efficiency against sentence-transformers can exceed 100%.

The engine is not modified: the benchmark only wraps, on its own instances, the judge's
`_run` (to time each llama_decode and count its tokens), the embedder's `_encode` (to
count sentences) and, during batch runs, `Engine.prefetch` (to time it). Results: bench/results/speed-<profile>.json and bench/results/speed.md (a
table per profile, built from every speed-*.json there). Timings on a busy machine are noisy:
the load average at start and end is recorded with the figures.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interviewer import batch, grading, models, text  # noqa: E402
from interviewer import judge as judge_module  # noqa: E402
from interviewer.config import DEFAULT_DOC, Settings  # noqa: E402
from interviewer.embed import SentenceTransformerEmbedder  # noqa: E402
from interviewer.judge import Context, LlamaJudge  # noqa: E402
from interviewer.service import Engine  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
RESULTS = ROOT / "bench" / "results"
PROBES = ROOT / "tests" / "adversarial" / "answers.yaml"
MOHLER = EVAL / "mohler.dev.jsonl"
MOHLER_DOC = EVAL / "mohler.dev.md"
SEED = DEFAULT_DOC
LEVELS = ("strong", "partial", "weak")

FULL = dict(questions=10, rounds=1, emb_rounds=3, batch_answers=500, batch_runs=3, judge_answers=40,
            cold_runs=3, help_runs=5, api_readers=20, api_graders=2, api_idle_s=5.0, api_busy_s=20.0,
            raw_prompts=3, raw_st_reps=3, check_rounds=1)
QUICK = dict(questions=3, rounds=1, emb_rounds=2, batch_answers=100, batch_runs=1, judge_answers=8,
             cold_runs=1, help_runs=2, api_readers=20, api_graders=2, api_idle_s=2.0, api_busy_s=6.0,
             raw_prompts=2, raw_st_reps=2, check_rounds=1)
PARTS = ("help", "cold", "api", "latency", "batch", "hardware")
READY_TIMEOUT_S = 300.0  # serve: models load and a test grading runs before /readyz says ready
PROCESS_TIMEOUT_S = 300.0  # any one subprocess


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values, q: float) -> float | None:
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else None


def median(values) -> float | None:
    return pct(values, 50)


def interviewer_bin() -> str:
    local = Path(sys.executable).parent / "interviewer"
    return str(local) if local.exists() else (shutil.which("interviewer") or "interviewer")


# -- instrumentation (on this process's engine instances only) ------------------------------------
class Probe:
    """Times every llama_decode of the judge and counts the sentences the embedder encodes."""

    def __init__(self, engine: Engine):
        self.decodes: list[tuple[int, float]] = []  # (tokens, seconds) per llama_decode
        self.sentences = 0
        self.judge = engine.judge()
        if isinstance(self.judge, LlamaJudge):
            run = self.judge._run

            def timed_run(batch_, run=run):
                n, t0 = batch_.n_tokens, time.perf_counter()
                try:
                    run(batch_)
                finally:
                    self.decodes.append((n, time.perf_counter() - t0))

            self.judge._run = timed_run
        embedder = engine.embedder
        if hasattr(embedder, "_encode"):
            embedder.load()
            encode = embedder._encode

            def counted_encode(sentences, encode=encode):
                self.sentences += len(sentences)
                return encode(sentences)

            embedder._encode = counted_encode
        self.raw_model = None  # plain sentence-transformers, the hardware reference: loaded when first needed
        spec = engine.profile.embedder if hasattr(embedder, "_encode") else None
        self.raw_model_path = spec.path if spec else None

    def raw_encode(self, sentences: list[str]):
        """Encode at batch 64 with sentence-transformers itself, past the embedder's cache."""
        if self.raw_model is None:
            self.raw_model = SentenceTransformerEmbedder(self.raw_model_path, "")
            self.raw_model.load()
        return self.raw_model._encode(sentences)

    @property
    def tokens(self) -> int:
        return getattr(self.judge, "tokens_evaluated", 0)


class AnswerCacheReset:
    """Drops answer texts from the embedder's cache and keeps the rubrics' texts, so that each
    measured grading embeds its answer as a first-seen answer would be."""

    def __init__(self, engine: Engine):
        self.cache = getattr(engine.embedder, "_cache", None)
        self.keep: set[str] = set()

    def add_rubric(self, qr) -> None:
        q = qr.question
        self.keep.update([q.title, q.short_answer, *(t for kp in qr.key_points for t in kp.phrasings),
                          *(m.text for m in qr.misconceptions)])

    def __call__(self) -> None:
        if self.cache is not None:
            for key in [k for k in self.cache if k not in self.keep]:
                self.cache.pop(key, None)


@dataclass
class Sample:
    question: str
    label: str
    total: float
    embedding: float
    judge: float
    rest: float
    tokens: int
    sentences: int
    decodes: list = field(default_factory=list)
    gate: str | None = None
    judge_status: str = ""


def grade_once(engine: Engine, probe: Probe, reset: AnswerCacheReset, qid: str, answer: str, label: str,
               doc: Path, use_judge: bool) -> Sample:
    reset()
    tok0, dec0, sent0 = probe.tokens, len(probe.decodes), probe.sentences
    result = engine.grade(qid, answer, doc=doc, use_judge=use_judge)
    gate = result.gate.code if result.gate else None
    status = result.provenance.judge_status
    t = engine.last_timings
    return Sample(question=qid, label=label, total=t["total"], embedding=t["embedding"], judge=t["judge"],
                  rest=t["total"] - t["embedding"] - t["judge"], tokens=probe.tokens - tok0,
                  sentences=probe.sentences - sent0, decodes=probe.decodes[dec0:], gate=gate, judge_status=status)


def summary(samples: list[Sample]) -> dict:
    if not samples:
        return {"answers": 0}
    col = lambda name: [getattr(s, name) for s in samples]  # noqa: E731
    decodes = [d for s in samples for d in s.decodes]
    decode_s = sum(d[1] for d in decodes)
    judge_s = sum(col("judge"))
    return {
        "answers": len(samples),
        "p50_s": pct(col("total"), 50), "p95_s": pct(col("total"), 95), "max_s": max(col("total")),
        "mean_s": float(np.mean(col("total"))),
        "p50_split_s": {k: pct(col(k), 50) for k in ("embedding", "judge", "rest")},
        "mean_split_s": {k: float(np.mean(col(k))) for k in ("embedding", "judge", "rest")},
        "gated": sum(s.gate is not None for s in samples),
        "judge_status": sorted({s.judge_status for s in samples}),
        "judge_seconds": judge_s, "embedding_seconds": sum(col("embedding")),
        "tokens_decoded": sum(col("tokens")), "tokens_per_answer": float(np.mean(col("tokens"))),
        "sentences_encoded": sum(col("sentences")), "sentences_per_answer": float(np.mean(col("sentences"))),
        "decode_calls_per_answer": len(decodes) / len(samples),
        "decode_seconds": decode_s,
        "decode_share_of_judge": decode_s / judge_s if judge_s else None,
        "decode_tok_per_s": sum(d[0] for d in decodes) / decode_s if decode_s else None,
    }


def decode_shapes(samples: list[Sample]) -> list[dict]:
    """llama_decode calls bucketed by batch size: how fast the engine's batch shapes run."""
    buckets: dict[str, list[tuple[int, float]]] = {}
    for s in samples:
        for n, sec in s.decodes:
            key = "1-31" if n < 32 else "32-127" if n < 128 else "128-511" if n < 512 else "512"
            buckets.setdefault(key, []).append((n, sec))
    out = []
    for key in ("1-31", "32-127", "128-511", "512"):
        if key in buckets:
            b = buckets[key]
            tok, sec = sum(x[0] for x in b), sum(x[1] for x in b)
            out.append({"batch_tokens": key, "calls": len(b), "tokens": tok, "seconds": sec,
                        "tok_per_s": tok / sec if sec else None})
    return out


# -- in-process parts ------------------------------------------------------------------------------
def probe_answers() -> dict[str, dict[str, str]]:
    data = yaml.safe_load(PROBES.read_text())
    return {qid: {k: " ".join(str(v).split()) for k, v in spec.items() if isinstance(v, str)}
            for qid, spec in data["questions"].items()}


def sentences_of(answers: list[str], limit: int | None = None) -> list[str]:
    out = list(dict.fromkeys(s for a in answers for s in text.segments(grading.Prepared.of(a).clean)))
    return out[:limit] if limit else out


class Reference:
    """What the hardware itself does, measured between the engine's gradings so that load coming
    and going on the machine affects both alike: llama.cpp evaluating the same judge model on the
    same prompt tokens flattened into one sequence (n_batch 512), and the embedder (in sentence-transformers) encoding sentences at
    batch 64. Runs are kept per label ("seed", "batch") and compared with the gradings beside them.
    """

    def __init__(self, engine: Engine, probe: Probe):
        self.engine, self.probe = engine, probe
        self.judge = probe.judge if isinstance(probe.judge, LlamaJudge) else None
        self._llm = None
        self.judge_runs: dict[str, list[float]] = {}
        self.judge_tokens: dict[str, list[int]] = {}
        self.encode_runs: dict[str, list[float]] = {}
        self.encode_sentences: dict[str, int] = {}

    def llama(self, flash_attn: bool = True):
        """flash_attn=True: the engine's context leaves flash attention on "auto", which llama.cpp
        turns on for the CPU; `Llama()` would turn it off (slower) unless asked."""
        import llama_cpp

        threads = self.engine.settings.threads
        llm = llama_cpp.Llama(model_path=str(self.judge.path), n_ctx=2048, n_threads=threads,
                              n_threads_batch=threads, n_batch=512, flash_attn=flash_attn, verbose=False)
        llm.eval(llm.tokenize(b"A warm-up prompt that allocates the compute buffers.", add_bos=True)[:32])
        return llm

    def prompt(self, qid: str, answer: str, doc: Path) -> list[int]:
        head, body, questions, _ = prompt_parts(self.engine, self.judge, qid, answer, doc)
        return (head + body + [t for q in questions for t in q])[: 2048 - 8]

    def judge_rate(self, label: str, qid: str, answer: str, doc: Path) -> float | None:
        if self.judge is None:
            return None
        if self._llm is None:
            self._llm = self.llama()
        tokens = self.prompt(qid, answer, doc)
        self._llm.reset()
        t0 = time.perf_counter()
        self._llm.eval(tokens)
        rate = len(tokens) / (time.perf_counter() - t0)
        self.judge_runs.setdefault(label, []).append(rate)
        self.judge_tokens.setdefault(label, []).append(len(tokens))
        return rate

    def encode_rate(self, label: str, sentences: list[str]) -> float | None:
        if self.probe.raw_model_path is None or not sentences:
            return None
        self.probe.raw_encode(sentences[:8])  # loaded and warm
        t0 = time.perf_counter()
        self.probe.raw_encode(sentences)
        rate = len(sentences) / (time.perf_counter() - t0)
        self.encode_runs.setdefault(label, []).append(rate)
        self.encode_sentences[label] = len(sentences)
        return rate

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
            gc.collect()


def every(n_items: int, n_wanted: int) -> int:
    """Stride that spreads n_wanted reference runs over n_items gradings."""
    return max(1, n_items // max(1, n_wanted))


def latency(engine: Engine, probe: Probe, reset: AnswerCacheReset, ref: Reference, cfg: dict,
            answers: dict) -> dict:
    qids = list(answers)[: cfg["questions"]]
    for qr in engine.rubric(SEED):
        reset.add_rubric(qr)
    # warm the models without touching the engine's per-question caches
    engine.embedder.embed(["A warm-up sentence for the embedder."])
    if probe.judge is not None:
        probe.judge.p_yes(Context("Warm-up question?", "Warm-up reference."), "Warm-up answer.", ["Is it?"])
    log(f"  first answer per question ({len(qids)} questions, paraphrase answers, judge on)")
    first = [grade_once(engine, probe, reset, q, answers[q].get("paraphrase") or answers[q]["correct_sentence"],
                        "paraphrase", SEED, True) for q in qids]
    items = [(q, level) for _ in range(cfg["rounds"]) for level in LEVELS for q in qids]
    stride = every(len(items), cfg["raw_prompts"])
    log(f"  judge on: {len(items)} answers, llama.cpp alone on {cfg['raw_prompts']} of the same prompts between them")
    judged: list[Sample] = []
    due = 0  # reference runs owed: one per stride, after the next judged (ungated) grading
    for i, (q, level) in enumerate(items):
        judged.append(grade_once(engine, probe, reset, q, answers[q][level], level, SEED, True))
        due += i % stride == stride // 2
        if due and judged[-1].gate is None and len(ref.judge_runs.get("seed", [])) < cfg["raw_prompts"]:
            ref.judge_rate("seed", q, answers[q][level], SEED)
            due -= 1
    sentences = sentences_of([answers[q][lv] for q in answers for lv in (*LEVELS, "paraphrase") if lv in answers[q]])
    ref.encode_rate("seed", sentences[:64])  # warm-up, not kept
    ref.encode_runs.pop("seed", None)
    emb_only: list[Sample] = []
    log(f"  judge off: {cfg['emb_rounds']} rounds of {len(qids) * len(LEVELS)} answers, the embedder alone between them")
    for _ in range(cfg["emb_rounds"]):
        ref.encode_rate("seed", sentences)
        for level in LEVELS:
            emb_only += [grade_once(engine, probe, reset, q, answers[q][level], level, SEED, False) for q in qids]
    ref.encode_rate("seed", sentences)
    out = {
        "document": SEED.name, "questions": qids, "levels": list(LEVELS), "rounds": cfg["rounds"],
        "order": "level by level, Q1..Qn within a level: every grading on another question than the last",
        "judge_on": summary(judged), "first_answer_per_question": summary(first),
        "embedding_only": summary(emb_only), "decode_shapes": decode_shapes(judged),
        "per_answer": [{k: v for k, v in asdict(s).items() if k != "decodes"} for s in judged],
    }
    if ref.judge is not None:  # where the decoded tokens go, per grading
        parts = {"head": [], "body": [], "questions": [], "key_point_questions": []}
        for s in judged:
            if s.gate is None:
                h, b, qs, points = prompt_parts(engine, ref.judge, s.question, answers[s.question][s.label])
                parts["head"].append(len(h))
                parts["body"].append(len(b))
                parts["questions"].append(question_tokens(qs))
                parts["key_point_questions"].append(question_tokens(qs[:points]))
        if parts["head"]:
            # what the misconception questions add to the key points' (their shared opening included)
            parts["misconception_questions"] = [q - k for q, k in zip(parts["questions"], parts.pop("key_point_questions"))]
            total = sum(sum(parts[k]) for k in ("head", "body", "questions"))
            out["prompt_tokens"] = {k: {"mean": float(np.mean(v)), "share": sum(v) / total} for k, v in parts.items()}
    return out


def prompt_parts(engine: Engine, judge: LlamaJudge, qid: str, answer: str, doc: Path = SEED):
    """The judge's token lists for one answer: head (question part), body (answer), one per question
    the engine asks about it (`Engine.questions_to_ask`); and how many of those questions are about
    key points (the first ones; the rest are about misconceptions)."""
    qr = engine.rubric(doc).for_question(qid)
    clean = grading.Prepared.of(answer).clean
    head, body = judge.prefix(engine.question_context(qr), clean)
    questions = engine.judge_questions(qr)
    asked = engine.questions_to_ask(qr, engine.embedding_signals(qr, clean))
    points = sum(1 for i in asked if i < len(qr.key_points))
    return head, body, [judge.suffix(questions[i]) for i in asked], points


def question_tokens(suffixes: list[list[int]]) -> int:
    """Tokens the yes/no questions cost: their common opening is decoded once."""
    stem = judge_module._stem(suffixes)
    sharing = sum(1 for q in suffixes if stem and q[: len(stem)] == stem)
    return sum(map(len, suffixes)) - max(0, sharing - 1) * len(stem)


def read_mohler() -> list[batch.Row]:
    rows = []
    for i, line in enumerate(MOHLER.read_text().splitlines(), 1):
        if line.strip():
            r = json.loads(line)
            rows.append(batch.Row(line=i, id=str(r["id"]), question=r["doc_question"], answer=r["answer"]))
    return rows


def run_batch(engine: Engine, probe: Probe, reset: AnswerCacheReset, rows: list[batch.Row], doc: Path,
              use_judge: bool, work: Path, name: str, between=None) -> dict:
    """One `BatchJob` over `rows` (written as JSONL with unique ids), the way `interviewer grade
    ANSWERS` runs it: prefetched embeddings, rows grouped by question, each record appended and
    fsynced. Wall time of the whole run, plus the engine's own timings per row. `between(row,
    sample)` runs after each graded row; its time is left out of the wall time."""
    src, out = work / f"{name}.jsonl", work / f"{name}.results.jsonl"
    src.write_text("".join(json.dumps({"id": f"{r.id}#{i}", "question": r.question, "answer": r.answer}) + "\n"
                           for i, r in enumerate(rows)))
    reset()  # answers of earlier runs leave the embedder's cache
    job = batch.BatchJob(engine, src, out, doc=doc, use_judge=use_judge)
    prefetch_s = [0.0]
    prefetch = engine.prefetch if hasattr(engine, "prefetch") else None
    if prefetch is not None:
        def timed_prefetch(answers, prefetch=prefetch):
            t0 = time.perf_counter()
            try:
                return prefetch(answers)
            finally:
                prefetch_s[0] += time.perf_counter() - t0

        engine.prefetch = timed_prefetch
    samples, errors, excluded = [], 0, 0.0
    tok0, dec0, sent0 = probe.tokens, len(probe.decodes), probe.sentences
    started = time.perf_counter()
    try:
        for record in job.run():
            if record["status"] != "graded":
                errors += 1
                continue
            t, result = engine.last_timings, record["result"]
            samples.append(Sample(question=record["question"], label=str(record["id"]), total=t["total"],
                                  embedding=t["embedding"], judge=t["judge"],
                                  rest=t["total"] - t["embedding"] - t["judge"], tokens=probe.tokens - tok0,
                                  sentences=probe.sentences - sent0, decodes=probe.decodes[dec0:],
                                  gate=(result.get("gate") or {}).get("code"),
                                  judge_status=result["provenance"]["judge_status"]))
            if between is not None:
                t0 = time.perf_counter()
                between(rows[int(str(record["id"]).rsplit("#", 1)[1])], samples[-1])
                excluded += time.perf_counter() - t0
            tok0, dec0, sent0 = probe.tokens, len(probe.decodes), probe.sentences
    finally:
        wall = time.perf_counter() - started - excluded
        if prefetch is not None:
            del engine.prefetch
    return {"samples": samples, "wall_s": wall, "prefetch_s": prefetch_s[0], "errors": errors}


def throughput(engine: Engine, probe: Probe, reset: AnswerCacheReset, ref: Reference, cfg: dict,
               work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    distinct_rows = read_mohler()
    distinct = len(distinct_rows)
    rows = batch.by_question([distinct_rows[i % distinct] for i in range(cfg["batch_answers"])])
    qids = list(dict.fromkeys(r.question for r in rows))
    for qr in engine.rubric(MOHLER_DOC):
        reset.add_rubric(qr)
    log(f"  embedding only: warm-up ({len(qids)} questions), then {cfg['batch_runs']} x {len(rows)} answers")
    for q in qids:  # rubric embeddings of every question, once
        first = next(r for r in rows if r.question == q)
        grade_once(engine, probe, reset, q, first.answer, "warm-up", MOHLER_DOC, False)
    sentences = sentences_of([r.answer for r in distinct_rows], 256)
    runs = []
    for k in range(cfg["batch_runs"]):
        ref.encode_rate("batch", sentences)
        runs.append(run_batch(engine, probe, reset, rows, MOHLER_DOC, False, work, f"embedding-{k}"))
    ref.encode_rate("batch", sentences)
    rates = [len(r["samples"]) / r["wall_s"] for r in runs]
    middle = runs[int(np.argsort(rates)[len(rates) // 2])]
    every_sample = [x for r in runs for x in r["samples"]]
    emb_s = sum(r["prefetch_s"] for r in runs) + sum(x.embedding for x in every_sample)
    out = {"dataset": MOHLER.name, "distinct_answers": distinct, "embedding_only": {
        "answers": len(rows), "runs": len(runs), "answers_per_s": median(rates), "answers_per_s_runs": rates,
        "note": f"{distinct} distinct answers" + (f", repeated to {len(rows)}" if len(rows) > distinct else ""),
        "wall_s": middle["wall_s"], "prefetch_s": middle["prefetch_s"], "errors": sum(r["errors"] for r in runs),
        **{k: v for k, v in summary(middle["samples"]).items() if k != "answers"},
        "all_runs": {"embedding_seconds": emb_s, "sentences_encoded": sum(x.sentences for x in every_sample),
                     "note": "embedding seconds = prefetch + embedding inside grade()"}}}
    if probe.judge is None:
        out["with_judge"] = {"error": "judge unavailable"}
        return out
    # with the judge: up to 10 answers per question, question after question
    per_q, picked, spare = 10, [], {}
    for q in qids:
        if len(picked) >= cfg["judge_answers"]:
            break
        group = [r for r in distinct_rows if r.question == q]
        take = group[: min(per_q, cfg["judge_answers"] - len(picked))]
        picked += take
        spare[q] = group[len(take)] if len(group) > len(take) else None
    log(f"  judge on: warm-up ({len(spare)} questions), then {len(picked)} answers")
    for q, row in spare.items():  # judge baselines and rubric embeddings, once per question
        answer = row.answer if row else engine.rubric(MOHLER_DOC).for_question(q).question.short_answer
        grade_once(engine, probe, reset, q, answer, "warm-up", MOHLER_DOC, True)
    stride, seen, due = every(len(picked), cfg["raw_prompts"]), [0], [0]

    def between(row: batch.Row, sample: Sample) -> None:  # the hardware on the same prompts, in between
        due[0] += seen[0] % stride == stride // 2
        seen[0] += 1
        if due[0] and sample.gate is None and len(ref.judge_runs.get("batch", [])) < cfg["raw_prompts"]:
            ref.judge_rate("batch", row.question, row.answer, MOHLER_DOC)
            due[0] -= 1

    run = run_batch(engine, probe, reset, picked, MOHLER_DOC, True, work, "judge", between)
    samples = run["samples"]
    out["with_judge"] = {"questions": len(spare), "answers_per_s": len(samples) / run["wall_s"],
                         "wall_s": run["wall_s"], "prefetch_s": run["prefetch_s"], "errors": run["errors"],
                         **summary(samples), "decode_shapes": decode_shapes(samples)}
    return out


def hardware(ref: Reference, cfg: dict, answers: dict) -> dict:
    out: dict = {"threads": ref.engine.settings.threads}
    if "seed" not in ref.encode_runs:  # the latency part was skipped
        sentences = sentences_of([answers[q][lv] for q in answers for lv in LEVELS])
        for _ in range(cfg["raw_st_reps"]):
            ref.encode_rate("seed", sentences)
    if ref.encode_runs:
        out["embedder"] = {label: {"sentences": ref.encode_sentences[label], "batch_size": 64,
                                   "sentences_per_s": median(runs), "runs": runs}
                           for label, runs in ref.encode_runs.items()}
    if ref.judge is None:
        return out
    if "seed" not in ref.judge_runs:
        for q in list(answers)[: cfg["raw_prompts"]]:
            ref.judge_rate("seed", q, answers[q]["strong"], SEED)
    judge: dict = {"model": ref.judge.path.name, "n_batch": 512, "flash_attn": True}
    judge.update({label: {"prompts": len(runs), "tokens": ref.judge_tokens[label], "tok_per_s": median(runs),
                          "runs": runs} for label, runs in ref.judge_runs.items()})
    # the same tokens in smaller llama_decode calls: what small batches cost
    q = list(answers)[0]
    tokens = ref.prompt(q, answers[q]["strong"], SEED)[:128]
    sizes, sweep = (16, 32, 128), {}
    if ref._llm is None:
        ref._llm = ref.llama()
    for _ in range(cfg["check_rounds"]):
        for size in sizes:
            ref._llm.reset()
            t0 = time.perf_counter()
            for start in range(0, len(tokens), size):
                ref._llm.eval(tokens[start:start + size])  # one llama_decode each
            sweep.setdefault(str(size), []).append(len(tokens) / (time.perf_counter() - t0))
    judge["tok_per_s_by_call_size"] = {k: median(v) for k, v in sweep.items()}
    judge["call_size_tokens"] = len(tokens)
    # and with flash attention off, as `Llama()` has it by default: one prompt, on and off in turn
    full = ref.prompt(q, answers[q]["strong"], SEED)
    llm_off = ref.llama(flash_attn=False)
    rates_fa: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for _ in range(cfg["check_rounds"]):
            for key, llm in (("on", ref._llm), ("off", llm_off)):
                llm.reset()
                t0 = time.perf_counter()
                llm.eval(full)
                rates_fa[key].append(len(full) / (time.perf_counter() - t0))
    finally:
        llm_off.close()
        del llm_off
        ref.close()
    on, off = median(rates_fa["on"]), median(rates_fa["off"])
    judge["flash_attn_check"] = {"tokens": len(full), "rounds": cfg["check_rounds"], "on_tok_per_s": on,
                                 "off_tok_per_s": off, "runs": rates_fa}
    out["judge"] = judge
    return out


# -- subprocesses ----------------------------------------------------------------------------------
def data_dir_for(settings: Settings, profile: str, root: Path, tag: str = "data") -> Path:
    """A fresh data directory whose models are links to the assembled ones (and whose record of
    verified hashes is a copy), so nothing is assembled or re-hashed, no cache of an earlier run
    (the judge's baselines, its prompt heads) is found, and the user's data directory is untouched."""
    d = root / f"{tag}-{profile}"
    (d / "models").mkdir(parents=True, exist_ok=True)
    real = models.profile(settings, profile)
    fresh = models.profile(settings.model_copy(update={"data_dir": d}), profile)
    for mine, theirs in ((fresh.judge, real.judge), (fresh.embedder, real.embedder)):
        if mine.path != theirs.path and theirs.path.exists() and not mine.path.exists():
            mine.path.parent.mkdir(parents=True, exist_ok=True)
            mine.path.symlink_to(theirs.path)
    real_onnx, fresh_onnx = (models.onnx_path(m.embedder, m.embedder.sha256 or "", dd)
                             for m, dd in ((real, settings.data_dir), (fresh, d)))
    if real_onnx.exists() and not fresh_onnx.exists():  # exported once by set-up, as on a user's machine
        fresh_onnx.symlink_to(real_onnx)
    verified = settings.data_dir / "models" / "verified.json"
    if verified.exists():
        shutil.copy(verified, d / "models" / "verified.json")
    return d


def _high_water(pid: int) -> int:
    """VmHWM of a live process in bytes (0 when unreadable)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def _reap(proc: subprocess.Popen, timeout: float) -> tuple[int | None, int]:
    """Wait for the child, at most `timeout` s; (exit code or None, peak RSS in bytes).

    The peak is the child's own VmHWM, read while it runs: wait4's ru_maxrss also counts the
    memory of the process it was forked from (this benchmark, large once a model is loaded)."""
    deadline = time.monotonic() + timeout
    peak, last_read = 0, 0.0
    while time.monotonic() < deadline:
        if proc.returncode is not None:  # already reaped (by Popen.poll): no rusage left to read
            return proc.returncode, peak
        if time.monotonic() - last_read > 0.02:
            peak, last_read = max(peak, _high_water(proc.pid)), time.monotonic()
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return proc.poll(), peak
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, peak or usage.ru_maxrss * 1024  # KiB on Linux
        time.sleep(0.002)
    return None, peak


def run_process(cmd: list[str], env: dict, timeout: float = PROCESS_TIMEOUT_S) -> dict:
    """Run once; wall time, exit code, peak RSS of exactly this child, its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
                                start_new_session=True)
        rc, rss = _reap(proc, timeout)
        wall = time.perf_counter() - t0
        if rc is None:
            _stop(proc)
        out.seek(0)
        err.seek(0)
        return {"wall_s": wall, "rc": rc, "max_rss_bytes": rss, "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace")[-2000:]}


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> tuple[int | None, int]:
    """SIGTERM the child's own process group, then SIGKILL after `grace` s; reap it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if proc.returncode is not None:
            return proc.returncode, 0
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        rc, rss = _reap(proc, wait)
        if rc is not None:
            return rc, rss
    return None, 0


def cold_start(profile: str, env: dict, cfg: dict, answer: str) -> dict:
    cmd = [interviewer_bin(), "grade", "-q", "Q1", "-a", answer, "--json", "--profile", profile]
    runs = []
    for i in range(cfg["cold_runs"]):
        r = run_process(cmd, env)
        status = None
        if r["rc"] == 0:
            try:
                status = json.loads(r["stdout"])["provenance"]["judge_status"]
            except (ValueError, KeyError, TypeError):
                status = "unparsable output"
        runs.append({"wall_s": r["wall_s"], "rc": r["rc"], "max_rss_bytes": r["max_rss_bytes"],
                     "judge_status": status, **({"stderr": r["stderr"]} if r["rc"] != 0 else {})})
        log(f"  cold start {i + 1}/{cfg['cold_runs']}: {r['wall_s']:.2f} s, rc {r['rc']}, "
            f"peak RSS {r['max_rss_bytes'] / 2**20:.0f} MiB, judge {status}")
    ok = [r for r in runs if r["rc"] == 0]
    failed = [r for r in runs if r["rc"] != 0]
    return {"command": "interviewer grade -q Q1 -a <strong answer> --json --profile " + profile,
            "runs": runs, "wall_s": median([r["wall_s"] for r in ok]),
            "max_rss_bytes": max((r["max_rss_bytes"] for r in ok), default=None),
            **({"error": f"{len(failed)} of {len(runs)} runs failed (rc {failed[0]['rc']}): "
                         + ((failed[0].get("stderr") or "").strip().splitlines() or ["no output"])[-1][:300]}
               if failed else {})}


def help_time(env: dict, cfg: dict) -> dict:
    runs = [run_process([interviewer_bin(), "--help"], env, 60) for _ in range(cfg["help_runs"])]
    return {"runs": [r["wall_s"] for r in runs], "rc": [r["rc"] for r in runs],
            "wall_s": median([r["wall_s"] for r in runs if r["rc"] == 0])}


# -- API -------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _load_phase(port: int, readers: int, seconds: float, graders: int, grade_bodies: list[dict],
                read_path: str, think_s: float = 0.0) -> dict:
    """`readers` threads GET `read_path` back to back (or `think_s` apart) for `seconds`, while
    `graders` threads POST /grade one after another. Every loop is bounded in time and count."""
    stop_reading, stop_grading = threading.Event(), threading.Event()
    reads: list[list[tuple[float, bool]]] = [[] for _ in range(readers)]  # (seconds, grading in flight)
    read_errors: list[str] = []
    grades: list[tuple[int, float]] = []
    in_flight = [0]  # gradings posted and not yet answered
    lock = threading.Lock()

    def reader(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(1_000_000):
            if stop_reading.is_set():
                break
            busy = in_flight[0] > 0
            t0 = time.perf_counter()
            try:
                conn.request("GET", read_path)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    reads[k].append((time.perf_counter() - t0, busy and in_flight[0] > 0))
                else:
                    with lock:
                        read_errors.append(f"HTTP {resp.status}")
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    read_errors.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if think_s:
                stop_reading.wait(think_s)
        conn.close()

    def grader(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=180)
        for i in range(10_000):
            if stop_grading.is_set():
                break
            body = json.dumps(grade_bodies[(k * 7 + i) % len(grade_bodies)])
            with lock:
                in_flight[0] += 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/grade", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                status = -1
                if stop_grading.is_set():  # the server is being stopped under it
                    break
                log(f"  grader: {type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=180)
            finally:
                with lock:
                    in_flight[0] -= 1
            with lock:
                grades.append((status, time.perf_counter() - t0))
            if status == 429:
                time.sleep(1.0)
        conn.close()

    gthreads = [threading.Thread(target=grader, args=(k,), daemon=True) for k in range(graders)]
    for t in gthreads:
        t.start()
    if graders:
        time.sleep(0.3)  # the first gradings are under way
    rthreads = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(readers)]
    t0 = time.perf_counter()
    for t in rthreads:
        t.start()
    time.sleep(seconds)
    stop_reading.set()
    for t in rthreads:
        t.join(60)
    window = time.perf_counter() - t0
    with lock:
        grades_in_window = len(grades)
    stop_grading.set()
    for t in gthreads:  # a grading still running is not waited for: stopping the server ends it
        t.join(2)
    every = [x for r in reads for x in r]
    # with graders, count only the reads that had a grading in flight from start to end
    lat = [sec for sec, busy in every if busy or not graders]
    ok_grades = [s for c, s in grades if c == 200]
    return {"readers": readers, "graders": graders, "think_ms": think_s * 1000, "seconds": window,
            "reads": len(lat), "reads_all": len(every), "reads_per_s": len(every) / window,
            "read_p50_ms": _ms(pct(lat, 50)), "read_p99_ms": _ms(pct(lat, 99)),
            "read_max_ms": _ms(max(lat) if lat else None), "read_errors": len(read_errors),
            "read_error_kinds": sorted(set(read_errors))[:5],
            "gradings_done_in_window": grades_in_window, "grade_statuses": sorted({c for c, _ in grades}),
            "grade_p50_s": median(ok_grades)}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def api(profile: str, env: dict, data_dir: Path, cfg: dict, answers: dict) -> dict:
    if not (ROOT / "interviewer" / "api" / "app.py").exists():
        return {"error": "interviewer/api does not exist yet"}
    port = _free_port()
    env = {**env, "INTERVIEWER_PROFILE": profile, "INTERVIEWER_DATA_DIR": str(data_dir)}
    server_log = data_dir / "serve.log"
    out: dict = {"port": port}
    with open(server_log, "wb") as logf:
        t0 = time.perf_counter()
        proc = subprocess.Popen([interviewer_bin(), "serve", "--port", str(port)], env=env, cwd=ROOT,
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            ready = None
            while time.perf_counter() - t0 < READY_TIMEOUT_S:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}")
                try:
                    status, body = _get(port, "/readyz", 5)
                except OSError:
                    status, body = None, b""
                if status == 200:
                    ready = json.loads(body)
                    break
                if status == 503 and b'"failed"' in body:
                    raise RuntimeError(f"server not ready: {body.decode(errors='replace')[:300]}")
                time.sleep(0.25)
            if ready is None:
                raise RuntimeError(f"/readyz not ready after {READY_TIMEOUT_S:.0f} s")
            out["ready_s"] = time.perf_counter() - t0
            out["ready"] = ready
            qid = list(answers)[0]
            read_path = f"/documents/{SEED.stem}/questions/{qid}"
            status, body = _get(port, read_path)
            if status != 200:
                raise RuntimeError(f"GET {read_path}: HTTP {status} {body[:200]!r}")
            out["read_path"] = read_path
            bodies = [{"question_id": q, "answer": answers[q][level]} for level in LEVELS for q in answers]
            log(f"  API ready in {out['ready_s']:.1f} s; {cfg['api_readers']} readers alone for "
                f"{cfg['api_idle_s']:.0f} s")
            think = cfg["api_think_ms"] / 1000
            out["idle"] = _load_phase(port, cfg["api_readers"], cfg["api_idle_s"], 0, bodies, read_path, think)
            log(f"  {cfg['api_readers']} readers with {cfg['api_graders']} grading threads for "
                f"{cfg['api_busy_s']:.0f} s")
            out["while_grading"] = _load_phase(port, cfg["api_readers"], cfg["api_busy_s"], cfg["api_graders"],
                                               bodies, read_path, think)
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            rc, rss = _stop(proc)
            out["server_exit"] = rc
            out["server_max_rss_bytes"] = rss
            if "error" in out:
                out["server_log_tail"] = server_log.read_text(errors="replace")[-3000:]
    return out


# -- report ----------------------------------------------------------------------------------------
def _get_path(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def figures(r: dict) -> list[dict]:
    """(figure, measured, target, met) rows; met is None where there is no target or no figure."""
    p = r["profile"]
    std, tiny = p == "standard", p == "tiny"
    lat, thr = r.get("latency", {}), r.get("batch", {})
    judge_on, emb_only = lat.get("judge_on", {}), lat.get("embedding_only", {})
    first = lat.get("first_answer_per_question", {})
    eff = r.get("efficiency", {})
    wj = thr.get("with_judge", {})
    cold, api_ = r.get("cold_start", {}), r.get("api", {})
    rows = []

    def add(name, value, fmt, target=None, limit=None, higher=False):
        met = None
        if value is not None and limit is not None:
            met = value >= limit if higher else value <= limit
        rows.append({"figure": name, "value": value, "measured": "n/a" if value is None else fmt(value),
                     "target": target or "—", "met": met})

    s = lambda v: f"{v:.2f} s"  # noqa: E731
    ms = lambda v: f"{v * 1000:.1f} ms"  # noqa: E731
    n_lat = judge_on.get("answers", 0)
    add(f"grade latency p50, judge on ({n_lat} answers, steady state)", judge_on.get("p50_s"), s,
        "≤ 2.5 s (standard)" if std else None, 2.5 if std else None)
    add("grade latency p95, judge on", judge_on.get("p95_s"), s)
    split = judge_on.get("p50_split_s")
    add("  p50 of parts: embedding / judge / rest", split and split.get("judge"),
        lambda _: " / ".join(f"{split[k] * 1000:.0f}" for k in ("embedding", "judge", "rest")) + " ms")
    add("  judge: tokens decoded per answer; llama_decode share of judge time",
        judge_on.get("tokens_per_answer"),
        lambda v: f"{v:.0f} tok; {judge_on['decode_share_of_judge'] * 100:.0f}%"
        if judge_on.get("decode_share_of_judge") else f"{v:.0f} tok")
    pt = lat.get("prompt_tokens")
    add("  judge prompt tokens per answer: question part (head) / answer / yes-no questions",
        pt and pt["head"]["mean"], lambda _: " / ".join(f"{pt[k]['mean']:.0f}" for k in ("head", "body", "questions")))
    if pt and "misconception_questions" in pt:
        add("    of the yes-no questions: key points / misconceptions", pt["questions"]["mean"],
            lambda _: f"{pt['questions']['mean'] - pt['misconception_questions']['mean']:.0f} / "
                      f"{pt['misconception_questions']['mean']:.0f}")
    floor = latency_floor(lat, r.get("hardware", {}))
    add("  p50 at raw llama.cpp speed (median tokens decoded / raw tok/s; without misconception questions)",
        floor and floor[0], lambda _: f"{floor[0]:.2f} s; {floor[1]:.2f} s" if floor[1] else f"{floor[0]:.2f} s")
    add(f"first answer per question p50 ({first.get('answers', 0)} questions: + judge baselines, none persisted; "
        "rubric embeddings)", first.get("p50_s"), s)
    add("judge efficiency (tokens / (judge s x raw tok/s))", eff.get("judge"), lambda v: f"{v * 100:.0f}%",
        "≥ 80%", 0.8, True)
    add(f"grade latency p50, embedding only ({emb_only.get('answers', 0)} gradings)", emb_only.get("p50_s"), ms,
        "≤ 30 ms", 0.030)
    add("embedding efficiency (sentences / (embedding s x raw sent/s))", eff.get("embedding"),
        lambda v: f"{v * 100:.0f}%")
    eo = thr.get("embedding_only", {})
    add(f"batch, embedding only ({eo.get('answers', 0)} answers, median of {eo.get('runs', 0)})",
        eo.get("answers_per_s"), lambda v: f"{v:.1f} answers/s", "≥ 100 answers/s", 100, True)
    add(f"batch, judge on ({wj.get('answers', 0)} answers over {wj.get('questions', 0)} questions)",
        wj.get("answers_per_s"), lambda v: f"{v:.2f} answers/s", "≥ 1 answer/s", 1, True)
    n_cold = len([x for x in cold.get("runs", []) if x.get("rc") == 0])
    add(f"cold start: `grade --json` in a fresh process (median of {n_cold})", cold.get("wall_s"), s,
        "≤ 8 s (standard)" if std else None, 8 if std else None)
    h = r.get("help", {})
    add(f"`interviewer --help` (median of {len(h.get('runs', []))})", h.get("wall_s"), s, "≤ 0.5 s", 0.5)
    rss = cold.get("max_rss_bytes")
    rss_limit = 2.5 if std else 1.0 if tiny else None
    add("peak RSS of the cold-start process", rss and rss / 1e9, lambda v: f"{v:.2f} GB",
        f"≤ {rss_limit} GB" if rss_limit else None, rss_limit)
    wg = api_.get("while_grading", {})
    pace = f", {wg['think_ms']:.0f} ms apart" if wg.get("think_ms") else ", back to back"
    add(f"API question read p50, {wg.get('readers', 20)} readers{pace}, while grading ({wg.get('reads_per_s', 0):.0f} "
        "reads/s)", wg.get("read_p50_ms"), lambda v: f"{v:.1f} ms")
    add(f"API question read p99, while grading ({wg.get('reads', 0)} reads with a grading in flight, "
        f"gradings done: {wg.get('gradings_done_in_window', 0)})",
        wg.get("read_p99_ms"), lambda v: f"{v:.1f} ms", "≤ 50 ms", 50)
    add("API question read p99, no grading (reference)", _get_path(api_, "idle", "read_p99_ms"),
        lambda v: f"{v:.1f} ms")
    hw = r.get("hardware", {})
    pct_ = lambda v: f"{v * 100:.0f}%"  # noqa: E731
    add("judge efficiency, batch (head cached; mohler prompts)", eff.get("judge_batch"), pct_)
    add("embedding efficiency, batch", eff.get("embedding_batch"), pct_)
    add("hardware: llama.cpp prompt eval, same model, seed prompts flattened (between the gradings)",
        _get_path(hw, "judge", "seed", "tok_per_s"), lambda v: f"{v:.0f} tok/s")
    add("  the engine's llama_decode calls on the same gradings", judge_on.get("decode_tok_per_s"),
        lambda v: f"{v:.0f} tok/s")
    sweep = _get_path(hw, "judge", "tok_per_s_by_call_size")
    add(f"  llama.cpp, the same {_get_path(hw, 'judge', 'call_size_tokens') or 0} tokens in calls of "
        + " / ".join(sweep or ["?"]) + " tokens", sweep and next(iter(sweep.values())),
        lambda _: " / ".join(f"{v:.0f}" for v in sweep.values()) + " tok/s")
    fa = _get_path(hw, "judge", "flash_attn_check")
    add("  llama.cpp, one seed prompt, flash attention on / off (the engine's context: on)", fa and fa["on_tok_per_s"],
        lambda _: f"{fa['on_tok_per_s']:.0f} / {fa['off_tok_per_s']:.0f} tok/s")
    add("hardware: the embedder in sentence-transformers, batch 64, the seed answers' sentences",
        _get_path(hw, "embedder", "seed", "sentences_per_s"), lambda v: f"{v:.0f} sentences/s")
    return rows


def table(r: dict) -> str:
    when = r["finished"][:16].replace("T", " ")
    load = r["machine"]["load_average"]
    lines = [f"### Profile `{r['profile']}` — {r['mode']} run, {when} UTC", "",
             f"{r['machine']['cpus']} CPUs, {r['machine']['threads']} threads; load average "
             f"{load['start']:.1f} at start, {load['end']:.1f} at end; {r['seconds']:.0f} s in all.", "",
             "| figure | measured | target | met |", "|---|---|---|---|"]
    for row in r["figures"]:
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['figure']} | {row['measured']} | {row['target']} | {met} |")
    if r.get("errors"):
        lines += ["", "Parts that failed: " + "; ".join(f"{k}: {v}" for k, v in r["errors"].items())]
    return "\n".join(lines)


def print_table(r: dict) -> None:
    print(f"\nProfile {r['profile']} ({r['mode']} run; load average {r['machine']['load_average']['start']:.1f} "
          f"at start, {r['machine']['load_average']['end']:.1f} at end)")
    width = max(len(x["figure"]) for x in r["figures"]) + 2
    print(f"{'figure':<{width}}{'measured':>22}  {'target':<22}met")
    for row in r["figures"]:
        met = "" if row["met"] is None else ("ok" if row["met"] else "MISSED")
        print(f"{row['figure']:<{width}}{row['measured']:>22}  {row['target']:<22}{met}")
    for k, v in r.get("errors", {}).items():
        print(f"  ! {k} failed: {v}")


def write_markdown(out_dir: Path) -> None:
    reports = []
    for path in sorted(out_dir.glob("speed-*.json")):
        try:
            reports.append(json.loads(path.read_text()))
        except ValueError:
            continue
    order = {"tiny": 0, "standard": 1}
    reports.sort(key=lambda r: (order.get(r["profile"], 9), r["profile"]))
    head = ("# Speed\n\nWritten by `bench/speed.py` (see its docstring for what each figure means). "
            "Latency is steady state (models loaded, each question graded once before); efficiencies compare "
            "the engine with raw llama.cpp and sentence-transformers on the same machine in the same run.\n")
    (out_dir / "speed.md").write_text(head + "\n" + "\n\n".join(table(r) for r in reports) + "\n")


def latency_floor(lat: dict, hw: dict) -> tuple[float, float | None] | None:
    """The least the judge-on p50 can be on this machine: the median answer's decoded tokens at the
    raw llama.cpp rate of the same run; and the same less the mean tokens of misconception questions."""
    raw = _get_path(hw, "judge", "seed", "tok_per_s")
    tokens = [a["tokens"] for a in lat.get("per_answer", [])
              if a.get("gate") is None and a.get("tokens")]
    if not raw or not tokens:
        return None
    median = float(np.median(tokens))
    mis = _get_path(lat, "prompt_tokens", "misconception_questions", "mean")
    return median / raw, (median - mis) / raw if mis is not None else None


def efficiencies(report: dict) -> dict:
    """The engine's work divided by what the hardware does in the same time, beside it."""
    eff, hw, lat, thr = {}, report.get("hardware", {}), report.get("latency", {}), report.get("batch", {})
    pairs = {
        "judge": (lat.get("judge_on", {}), "tokens_decoded", "judge_seconds", ("judge", "seed", "tok_per_s")),
        "judge_batch": (thr.get("with_judge", {}), "tokens_decoded", "judge_seconds", ("judge", "batch", "tok_per_s")),
        "embedding": (lat.get("embedding_only", {}), "sentences_encoded", "embedding_seconds",
                      ("embedder", "seed", "sentences_per_s")),
        "embedding_batch": (thr.get("embedding_only", {}).get("all_runs", {}), "sentences_encoded",
                            "embedding_seconds", ("embedder", "batch", "sentences_per_s")),
    }
    for name, (measured, work, seconds, raw_path) in pairs.items():
        raw = _get_path(hw, *raw_path)
        if raw and measured.get(seconds):
            eff[name] = measured[work] / (measured[seconds] * raw)
    return eff


# -- driver ----------------------------------------------------------------------------------------
def run_profile(name: str, cfg: dict, args, settings: Settings, answers: dict, tmp: Path) -> dict:
    started = time.perf_counter()
    report: dict = {
        "profile": name, "mode": "quick" if args.quick else "full",
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {**cfg, "skip": args.skip},
        "machine": {"cpus": os.cpu_count(), "threads": settings.threads, "python": platform.python_version(),
                    "platform": platform.platform(), "load_average": {"start": os.getloadavg()[0]}},
        "errors": {},
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    data_dir = data_dir_for(settings, name, tmp)
    env_cli = {**env, "INTERVIEWER_DATA_DIR": str(data_dir)}

    def part(key: str, fn):
        if key in args.skip:
            return None
        log(f"{name}: {key}")
        try:
            return fn()
        except Exception as exc:  # one part failing must not lose the others
            traceback.print_exc()
            report["errors"][key] = f"{type(exc).__name__}: {exc}"
            return None

    q1 = answers["Q1"]["strong"]
    report["help"] = part("help", lambda: help_time(env_cli, cfg)) or {}
    report["cold_start"] = part("cold", lambda: cold_start(name, env_cli, cfg, q1)) or {}
    report["api"] = part("api", lambda: api(name, env, data_dir, cfg, answers)) or {}
    for key in ("cold_start", "api"):
        if report[key].get("error"):
            report["errors"][key] = report[key]["error"]

    if not {"latency", "batch", "hardware"} <= set(args.skip):
        log(f"{name}: loading the models in this process")
        engine_settings = settings.model_copy(update={"data_dir": data_dir_for(settings, name, tmp, "engine")})
        engine = Engine(engine_settings, profile=name)
        t0 = time.perf_counter()
        try:
            engine.load()
        except Exception as exc:  # reported, and tried once more: the figures below need the models
            traceback.print_exc()
            report["errors"]["engine_load"] = f"{type(exc).__name__}: {exc}"
            engine.load()
        report["engine_load_s"] = time.perf_counter() - t0
        probe = Probe(engine)
        reset = AnswerCacheReset(engine)
        ref = Reference(engine, probe)
        report["judge_available"] = probe.judge is not None
        if probe.judge is None:
            report["errors"]["judge"] = f"judge unavailable: {engine._judge_error}"
        try:
            report["latency"] = part("latency", lambda: latency(engine, probe, reset, ref, cfg, answers)) or {}
            report["batch"] = part("batch", lambda: throughput(engine, probe, reset, ref, cfg,
                                                               tmp / f"batch-{name}")) or {}
            report["hardware"] = part("hardware", lambda: hardware(ref, cfg, answers)) or {}
        finally:
            ref.close()
        report["efficiency"] = efficiencies(report)
        del probe, reset, ref, engine
        gc.collect()

    report["machine"]["load_average"]["end"] = os.getloadavg()[0]
    report["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report["seconds"] = time.perf_counter() - started
    report["figures"] = figures(report)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", "--profile", nargs="+", default=["tiny", "standard"])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer questions, answers and repeats (tiny: "
                                                         "~2 min on a quiet machine)")
    ap.add_argument("--judge-answers", type=int, default=None, help="batch with the judge: answers (default 40; "
                                                                    "quick 8)")
    ap.add_argument("--questions", type=int, default=None, help="latency: seed questions Q1..QN (default 10; "
                                                                "quick 3)")
    ap.add_argument("--batch-answers", type=int, default=None, help="batch, embedding only: answers (default 500; "
                                                                    "quick 100)")
    ap.add_argument("--api-think-ms", type=float, default=0.0,
                    help="API: pause between one reader's requests (default 0: back to back, the server saturated)")
    ap.add_argument("--skip", nargs="*", default=[], choices=PARTS, help="parts to leave out")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    if args.judge_answers is not None:
        cfg["judge_answers"] = max(1, args.judge_answers)
    if args.batch_answers is not None:
        cfg["batch_answers"] = max(1, args.batch_answers)
    if args.questions is not None:
        cfg["questions"] = max(1, args.questions)
    cfg["api_think_ms"] = max(0.0, args.api_think_ms)
    settings = Settings()
    answers = probe_answers()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="interviewer-speed-") as tmp:
        for name in args.profiles:
            report = run_profile(name, cfg, args, settings, answers, Path(tmp))
            (args.out_dir / f"speed-{name}.json").write_text(json.dumps(report, indent=2, default=str))
            write_markdown(args.out_dir)
            print_table(report)
    print(f"\nwrote {args.out_dir / 'speed.md'} and speed-<profile>.json", file=sys.stderr)


if __name__ == "__main__":
    main()
