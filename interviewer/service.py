"""The one service layer that the CLI, the batch grader and the API share.

`Engine` owns the loaded models (lazily, once per process), the question documents and
their rubrics, measures the signals for an answer and hands them to the pure `grading`.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import bank, calibration, grading, models, rubric, text
from .bank import Document
from .config import Settings, get_settings
from .embed import Embedder, OnnxEmbedder, SentenceTransformerEmbedder, exportable
from .errors import InterviewerError, ModelUnavailable
from .judge import CachingJudge, Context, Judge, LlamaJudge
from .rubric import QuestionRubric, Rubric
from .schema import GradeResult, ModelRef, Provenance

WHOLE_ANSWER_WORDS = 60
BACKGROUND_NICE = 10  # model work on a background thread yields the CPU to whatever a user waits on
MAIN_THREAD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def background_thread() -> None:
    """Make the calling thread a background worker (and the threads it starts, such as llama.cpp's
    and torch's OpenMP workers, which inherit both settings):
    - a lower CPU priority (Linux: a per-thread nice value). A question read takes about a
      millisecond and a grading seconds: at nice 10 the grading gives way for that millisecond;
    - Ctrl-C and SIGTERM blocked, so that the kernel delivers them to the main thread, the only
      one where Python runs signal handlers."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), BACKGROUND_NICE))
    except (AttributeError, OSError):  # not Linux, or not permitted: same speed, less fair
        pass
    if hasattr(signal, "pthread_sigmask") and threading.current_thread() is not threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)


@dataclass
class _Loaded:
    document: Document
    rubric: Rubric


class Engine:
    """Grades answers. Thread-safe; the models are shared and load on first use."""

    def __init__(self, settings: Settings | None = None, *, profile: str | None = None,
                 embedder: Embedder | None = None, judge: Judge | None = None,
                 calibration_: calibration.Calibration | None = None):
        self.settings = settings or get_settings()
        self.profile_name = profile or self.settings.profile
        self._profile = None
        self._embedder, self._judge = embedder, judge
        self._judge_error: str | None = None
        self.calibration = calibration_ or calibration.load(self.settings.calibration, self.profile_name)
        self._docs: dict[Path, _Loaded] = {}
        self._known_baselines: dict[tuple, tuple[list[float], list[float]]] = {}  # question -> its baselines
        self._baseline_store = None
        self._embed_lock, self._judge_lock = threading.Lock(), threading.Lock()
        self._prepare_lock, self._prepared = threading.Lock(), set()  # questions prepared or under way
        self.last_timings: dict[str, float] = {}  # seconds spent per part of the last grade()

    # -- models -------------------------------------------------------------------------
    @property
    def profile(self) -> models.Profile:
        if self._profile is None:
            self._profile = models.profile(self.settings, self.profile_name)
        return self._profile

    @property
    def embedder(self) -> Embedder:
        with self._embed_lock:
            if self._embedder is None:
                spec = self.profile.embedder
                digest = models.verify(spec, self.settings.data_dir)
                self._embedder = embedder_for(spec, digest, self.settings)
        return self._embedder

    def judge(self) -> Judge | None:
        """The judge, or None (with the reason kept) when it cannot run."""
        with self._judge_lock:
            if self._judge is None and self._judge_error is None:
                try:
                    spec = self.profile.judge
                    digest = models.verify(spec, self.settings.data_dir)
                    heads = self.settings.data_dir / "cache" / f"heads-{digest[:12]}"
                    self._judge = LlamaJudge(spec.path, digest, threads=self.settings.threads,
                                             n_ctx=self.settings.judge_context, state_dir=heads).load()
                except ModelUnavailable as exc:
                    self._judge_error = str(exc)
        return self._judge

    def require_judge(self, *, load: bool = True) -> None:
        """Raise ModelUnavailable, saying why, where the judge cannot run: for work whose results are
        kept as final (a batch), where a fall-back to the embedding alone would not be seen in time.
        `load=False`: only where loading it has failed already (never waits for a load)."""
        if load:
            self.judge()
        if self._judge_error is not None:
            raise ModelUnavailable(f"the judge model cannot run: {self._judge_error}")

    def load(self, *, with_judge: bool = True) -> None:
        """Load the models now, both at once (a server does this at start-up)."""
        def load_judge():
            background_thread()
            self.judge()

        loader = threading.Thread(target=load_judge, daemon=True) if with_judge else None
        if loader:
            loader.start()
        if hasattr(self.embedder, "load"):
            self.embedder.load()
        if loader:
            loader.join()

    def prepare(self, question_id: str, doc: Path | str | None = None) -> None:
        """Do now what grading an answer to this question needs that does not depend on the
        answer: embed its rubric and, where the judge is loaded already, its baselines (the null
        and the reference answer) and the question part of its prompt. Grading then costs only
        the answer's own work."""
        qr = self._loaded(doc).rubric.for_question(question_id)
        self.embedding_signals(qr, qr.question.title)
        judge = self._judge
        if judge is not None:
            context = self.question_context(qr)
            self._baselines(judge, qr, context, self.judge_questions(qr))
            if hasattr(judge, "prime"):
                judge.prime(context)

    def prepare_in_background(self, question_id: str, doc: Path | str | None = None) -> None:
        """`prepare` on a thread of its own, while the candidate reads the question and types;
        at most one at a time per question, and once per question once the judge is loaded."""
        key = (str(doc or self.settings.doc), question_id)
        with self._prepare_lock:
            if key in self._prepared:
                return
            self._prepared.add(key)

        def run():
            background_thread()
            ready = False
            try:
                self.prepare(question_id, doc)
                ready = self._judge is not None
            except Exception:  # grading reports any problem when it happens
                pass
            if not ready:
                with self._prepare_lock:
                    self._prepared.discard(key)

        # not a daemon: exiting waits for it rather than tearing the models down under it
        threading.Thread(target=run, name=f"prepare-{question_id}").start()

    # -- documents ----------------------------------------------------------------------
    def document(self, path: Path | str | None = None) -> Document:
        return self._loaded(path).document

    def rubric(self, path: Path | str | None = None) -> Rubric:
        return self._loaded(path).rubric

    def _loaded(self, path) -> _Loaded:
        path = bank.resolve(path or self.settings.doc)
        doc = bank.load(path)
        cached = self._docs.get(path)
        if cached is None or cached.document is not doc:
            cached = self._docs[path] = _Loaded(doc, rubric.load(doc))
        return cached

    # -- grading ------------------------------------------------------------------------
    def grade(self, question_id: str, answer: str, *, doc: Path | str | None = None,
              use_judge: bool = True) -> GradeResult:
        start = time.perf_counter()
        loaded = self._loaded(doc)
        qr = loaded.rubric.for_question(question_id)
        prepared = grading.Prepared.of(answer)
        cal = self.calibration
        gate = grading.text_gate(qr, prepared, self.settings.max_answer_words)
        t0 = time.perf_counter()
        emb = None if gate else self.embedding_signals(qr, prepared.clean)
        t1 = time.perf_counter()
        if emb is not None:
            gate = grading.similarity_gate(qr, prepared.clean, emb, cal, loaded.document.title)
        judge_signals, status = None, "disabled"
        if use_judge and not gate:
            judge_signals, status = self.judge_signals(qr, prepared.clean, emb)
            gate = grading.wording_gate(prepared.clean, judge_signals, cal)
        elif gate:
            status = f"skipped: {gate.code}"
        t2 = time.perf_counter()
        provenance = self.provenance(loaded.document, qr, status, judge_signals is not None)
        result = grading.grade(qr, prepared, emb, judge_signals, cal, provenance, gate)
        end = time.perf_counter()
        self.last_timings = {"embedding": t1 - t0, "judge": t2 - t1, "total": end - start}
        return result

    def prefetch(self, answers: list[str]) -> None:
        """Embed the pieces of many answers in one batch; grading them later reads the cache."""
        cleaned = [grading.Prepared.of(a).clean for a in answers]
        pieces = [p for clean in cleaned for p in _pieces(clean)[0] + [clean]]
        if pieces:
            self.embedder.embed(list(dict.fromkeys(pieces)))

    def embedding_signals(self, qr: QuestionRubric, answer: str) -> grading.EmbeddingSignals:
        segments, n_real = _pieces(answer)
        question = qr.question
        kp_texts = [list(kp.phrasings) for kp in qr.key_points]
        mis_texts = [m.text for m in qr.misconceptions]
        topic = [question.title, question.short_answer]
        flat = [t for group in kp_texts for t in group]
        vectors = self.embedder.embed(segments + [answer] + topic + flat + mis_texts)
        floor = self.embedder.cosine_floor

        def cos(a, b):  # on MiniLM's scale, which the calibration is set on (models.rescale)
            return models.rescale(a @ b, floor)

        seg = vectors[: len(segments)]
        whole = vectors[len(segments)]
        offset = len(segments) + 1
        topic_v = vectors[offset: offset + len(topic)]
        offset += len(topic)
        kp_v = vectors[offset: offset + len(flat)]
        mis_v = vectors[offset + len(flat):]
        raw = cos(seg, kp_v.T)  # segments x phrasings
        beta = self.calibration.question_projection
        projected = cos(_without(seg, topic_v[0], beta), _without(kp_v, topic_v[0], beta).T) if beta else raw
        kp_sim, kp_best, kp_negation_differs, start = [], [], [], 0
        for group in kp_texts:
            # per segment, its best over the point's phrasings
            best = projected[:, start: start + len(group)].max(axis=1)
            start += len(group)
            kp_sim.append(float(best.max()))
            kp_best.append(int(np.argmax(best[:n_real])))
            closest = text.negations(segments[int(np.argmax(best))])
            kp_negation_differs.append(all(closest != text.negations(p) for p in group))
        point_sim = float(np.max(raw, initial=0.0))
        mis_sim, mis_best = [], []
        for vec in mis_v:
            sims = cos(seg, vec)
            mis_best.append(int(np.argmax(sims[:n_real])))
            mis_sim.append(float(sims.max()))
        return grading.EmbeddingSignals(
            segments=segments, kp_sim=kp_sim, kp_best=kp_best, kp_negation_differs=kp_negation_differs,
            mis_sim=mis_sim, mis_best=mis_best, topic_sim=float(max(np.max(cos(seg, topic_v.T)), point_sim)),
            question_sim=float(cos(whole, topic_v[0])), point_sim=point_sim,
        )

    def judge_questions(self, qr: QuestionRubric) -> list[str]:
        return ([grading.key_point_question(kp.text) for kp in qr.key_points]
                + [grading.misconception_question(m.text) for m in qr.misconceptions])

    def questions_to_ask(self, qr: QuestionRubric, emb: grading.EmbeddingSignals | None, *,
                         every_point: bool = False) -> list[int]:
        """Which of `judge_questions` the judge is asked: the key points that the embedding does not
        decide alone (all of them with `every_point`, as calibration needs), and the misconceptions
        that the answer's wording comes close to (the others cannot be detected anyway)."""
        cal, n = self.calibration, len(qr.key_points)
        points = [i for i in range(n)
                  if every_point or emb is None or cal.asks_judge(emb.kp_sim[i], emb.kp_negation_differs[i])]
        return points + [n + i for i, sim in enumerate(emb.mis_sim if emb else [])
                         if sim >= cal.misconception_similarity]

    def judge_signals(self, qr: QuestionRubric, answer: str, emb: grading.EmbeddingSignals | None = None, *,
                      every_point: bool = False) -> tuple[grading.JudgeSignals | None, str]:
        """Ask the judge the questions `questions_to_ask` picks."""
        asked = self.questions_to_ask(qr, emb, every_point=every_point)
        if not asked:
            return None, "skipped: the embedding decides every key point"
        judge = self.judge()
        if judge is None:
            return None, f"unavailable: {self._judge_error}"
        context = self.question_context(qr)
        questions = self.judge_questions(qr)
        n = len(qr.key_points)
        try:
            null, reference = self._baselines(judge, qr, context, questions)
            p = dict(zip(asked, judge.p_yes(context, answer, [questions[i] for i in asked])))
            # read off the same pass; needed only where it can gate the answer as garbled
            surprisal = judge.surprisal(context, answer) if grading.wording_tells(answer) else None
        except InterviewerError as exc:
            return None, f"unavailable: {exc}"
        return grading.JudgeSignals(
            key_points=[(p[i], null[i], reference[i]) if i in p else None for i in range(n)],
            misconceptions=[(p[i], null[i], reference[i]) if i in p else None for i in range(n, len(questions))],
            surprisal=surprisal,
        ), "ok"

    @staticmethod
    def question_context(qr: QuestionRubric) -> Context:
        question = qr.question
        reference = question.short_answer
        if question.alternatives:
            reference += "\nOther acceptable answers: " + "; ".join(question.alternatives)
        return Context(question.title, reference)

    def _baselines(self, judge, qr, context, questions) -> tuple[list[float], list[float]]:
        """P(yes) for the null answer and for the reference answer, for every question (the
        misconceptions' reference asked apart, so the key points' is decoded as it always was):
        per process in memory, across processes in a disk cache."""
        key = (judge.id, judge.sha256, qr.version, qr.question.id)
        if key not in self._known_baselines:
            if self._baseline_store is None or self._baseline_store[0] is not judge:
                path = self.settings.data_dir / "cache" / f"baselines-{judge.sha256[:12]}.sqlite"
                try:
                    self._baseline_store = (judge, CachingJudge(judge, path))
                except Exception:  # an unwritable data directory only costs speed
                    self._baseline_store = (judge, judge)
            store, n, reference = self._baseline_store[1], len(qr.key_points), grading.reference_answer(qr)
            misconceptions = store.p_yes(context, reference, questions[n:]) if questions[n:] else []
            self._known_baselines[key] = (store.p_yes(context, grading.NULL_ANSWER, questions),
                                          store.p_yes(context, reference, questions[:n]) + misconceptions)
        return self._known_baselines[key]

    def provenance(self, doc: Document, qr: QuestionRubric, judge_status: str, judged: bool) -> Provenance:
        judge = self._judge
        signals = ["embedding"] + (["judge"] if judged else [])
        return Provenance(
            engine_version="",
            document=doc.path.name,
            document_sha256=doc.sha256,
            rubric_version=qr.version,
            rubric_curated=qr.curated,
            embedder=ModelRef(id=self.embedder.id, sha256=self.embedder.sha256, runtime=self.embedder.runtime or None),
            judge=(ModelRef(id=judge.id, sha256=judge.sha256, runtime=judge.runtime or None)
                   if judge is not None and judged else None),
            judge_status=judge_status,
            calibration=self.calibration.id,
            signals=signals,
        )


def embedder_for(spec: models.ModelFile, digest: str, settings: Settings) -> Embedder:
    """ONNX Runtime for a model it reproduces (mean-pooled, normalised), sentence-transformers otherwise."""
    options = dict(threads=settings.threads, name=spec.key, prompt=spec.prompt, cosine_floor=spec.cosine_floor)
    if exportable(spec.path):
        return OnnxEmbedder(spec.path, digest, models.onnx_path(spec, digest, settings.data_dir), **options)
    return SentenceTransformerEmbedder(spec.path, digest, **options)


def _without(vectors: np.ndarray, direction: np.ndarray, share: float) -> np.ndarray:
    """Unit vectors with `share` of their component along the unit vector `direction` taken off."""
    rest = vectors - share * np.outer(vectors @ direction, direction)
    return rest / np.maximum(np.linalg.norm(rest, axis=1, keepdims=True), 1e-12)


def _pieces(answer: str) -> tuple[list[str], int]:
    """Segments to embed, and how many of them are quotable evidence (the rest: the whole answer)."""
    segments = text.segments(answer) or [answer]
    n_real = len(segments)
    if len(text.words(answer)) <= WHOLE_ANSWER_WORDS and answer not in segments:
        segments.append(answer)
    return segments, n_real
