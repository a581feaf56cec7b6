"""Pure grading: a rubric, an answer and its measured signals in; a GradeResult out. No I/O.

The service layer measures the signals (embedding similarities, judge probabilities); this
module decides gates, fuses the signals per key point with the calibration, and explains
the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import __version__, feedback, text
from .calibration import Calibration, judge_evidence, logit_delta
from .rubric import QuestionRubric
from .schema import (Citation, Gate, GradeResult, JudgeSignal, KeyPointResult, MisconceptionResult,
                     Provenance)

NULL_ANSWER = "I don't know."
# An answer this close to some key point states it nearly word for word: not a restatement of the
# question, even where the question's own text holds every word of the answer (“What evidence
# does Jim have…? … was clear …” answered “The mixtures are clear.”, cosine 0.96 to its key point).
STATES_KEY_POINT = 0.9


def reference_answer(rubric: QuestionRubric) -> str:
    """The answer that sets the top of the judge's scale: the document's short answer, with the
    quoted passage of every key point that it does not contain already."""
    parts = [rubric.question.short_answer]
    for kp in rubric.key_points:
        if kp.quote and kp.quote not in "\n".join(parts):
            parts.append(kp.quote)
    return "\n".join(parts)


def key_point_question(claim: str) -> str:
    return f"Does the candidate's answer state that {claim.rstrip('.')}?"


def misconception_question(claim: str) -> str:
    return f"Does the candidate's answer claim that {claim.rstrip('.')}?"


@dataclass(frozen=True)
class JudgeSignals:
    """P(yes) from the judge for each question (answer, null answer, reference answer): key
    points, then misconceptions; None where not asked."""

    key_points: list[tuple[float, float, float] | None]
    misconceptions: list[tuple[float, float, float] | None] = field(default_factory=list)
    surprisal: float | None = None  # of the answer's wording (Judge.surprisal)


@dataclass(frozen=True)
class EmbeddingSignals:
    segments: list[str]
    kp_sim: list[float]
    kp_best: list[int]  # index into segments, -1 when there is none
    kp_negation_differs: list[bool]  # the closest segment has other negations than every phrasing
    mis_sim: list[float]
    mis_best: list[int]
    topic_sim: float  # best cosine of the answer with the question, reference or any key point
    question_sim: float  # cosine of the whole answer with the question
    point_sim: float  # best cosine of the answer with any key point, the question's direction kept


@dataclass(frozen=True)
class Prepared:
    """The answer as it will be graded: text addressed to the grader removed, claims taken back in
    the same breath ("…, or maybe not") and sentences that repeat an earlier one (repeating a weak
    answer three times raised its score by up to 2)."""

    original: str
    clean: str
    removed: list[str]
    repeated: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, answer: str) -> "Prepared":
        clean, removed = text.split_injections(answer or "")
        clean, retracted = text.without_retractions(clean)
        clean, repeated = text.without_repeats(clean)
        return cls(answer or "", clean, removed, repeated, retracted)


def min_words(rubric: QuestionRubric) -> int:
    """Three words where the reference answer is long; any non-empty answer where it is short."""
    return 3 if len(text.words(rubric.question.short_answer)) >= 20 else 1


def text_gate(rubric: QuestionRubric, answer: Prepared, max_words: int) -> Gate | None:
    """Gates that need no model."""
    n = len(text.words(answer.clean))
    if n == 0 and answer.retracted:
        return Gate(code="retracted", message="Your answer takes back every claim it makes (“…, or maybe "
                    "not”). Say what you hold to be true.")
    if n == 0:
        return Gate(code="empty", message="No answer was given. Answer the question in a few sentences.")
    if n > max_words:
        return Gate(code="too_long", message=f"Your answer has {n} words, more than the {max_words} a spoken "
                    "interview answer should take. Say what matters in fewer words.")
    if text.looks_like_keyword_list(answer.clean):
        return Gate(code="keyword_list", message="Your answer is a list of terms. Interviewers assess "
                    "explanations: say in sentences what the terms mean and how they relate.")
    if n < min_words(rubric):
        return Gate(code="too_short", message=f"Your answer has {n} word(s); explain it in at least "
                    f"{min_words(rubric)} words so that it can be assessed.")
    return None


def similarity_gate(rubric: QuestionRubric, answer: str, emb: EmbeddingSignals, cal: Calibration,
                    topic: str = "") -> Gate | None:
    """Gates that need the embedding signal. `topic`: the document's title, whose words (like the
    question's) an answer does not add by repeating them."""
    if emb.topic_sim < cal.off_topic_similarity:
        return Gate(code="off_topic", message="Your answer does not address this question (similarity to the "
                    f"question and its key points: {emb.topic_sim:.2f}). Reread the question: "
                    f"{rubric.question.title}")
    # Restated: close to the question, stating no key point nearly word for word, and either adding no
    # word to it (or to the topic), or adding at most a few, none from the reference, while closer to
    # it than to any key point (short correct answers often reuse the question's words).
    question = rubric.question.title
    reference = " ".join([rubric.question.short_answer] + [kp.text for kp in rubric.key_points])
    best_point = emb.point_sim
    closer_to_question = emb.question_sim - best_point >= cal.restated_margin
    if emb.question_sim >= cal.restated_similarity and best_point < STATES_KEY_POINT and (
            not text.novel_words(answer, f"{question} {topic}")
            or closer_to_question and text.restates(answer, question, reference)):
        return Gate(code="restated", message="Your answer restates the question without answering it. "
                    "Say what the answer is and why.")
    return None


# Below this many words the surprisal of an answer varies too much to say anything: a short, clumsy
# answer (“No, Because he will be tall so then that is why.”, SciEntsBank) reads nearly as oddly
# as shuffled words.
GARBLED_MIN_WORDS = 15


def wording_tells(answer: str) -> bool:
    """Whether the answer is long enough for its surprisal to tell nonsense from clumsy sentences."""
    return len(text.words(answer)) >= GARBLED_MIN_WORDS


def wording_gate(answer: str, judge: JudgeSignals | None, cal: Calibration) -> Gate | None:
    """The gate that needs the judge: words in no meaningful order (a correct answer's words
    shuffled cover its key points for the embedding, and the judge too says yes to them)."""
    if (judge is None or judge.surprisal is None or cal.garbled_surprisal is None
            or not wording_tells(answer) or judge.surprisal < cal.garbled_surprisal):
        return None
    return Gate(code="garbled", message="Your answer does not read as sentences: its words are in no order "
                f"that says anything (surprisal {judge.surprisal:.2f} nats a word piece; sentences stay below "
                f"{cal.garbled_surprisal:.2f}). Explain the answer in full sentences.")


def grade(
    rubric: QuestionRubric,
    answer: Prepared,
    emb: EmbeddingSignals | None,
    judge: JudgeSignals | None,
    cal: Calibration,
    provenance: Provenance,
    gate: Gate | None = None,
) -> GradeResult:
    kps = rubric.key_points
    results: list[KeyPointResult] = []
    disagreements: list[float] = []
    for i, kp in enumerate(kps):
        sim = emb.kp_sim[i] if emb and not gate else 0.0
        negation_differs = bool(emb and emb.kp_negation_differs[i])
        signal = None
        if gate:
            credit = 0.0
        elif judge and judge.key_points[i] is not None:
            p, p_null, p_ref = judge.key_points[i]
            signal = _judge_signal(p, p_null, p_ref)
            j = judge_evidence(p, p_null, p_ref)
            credit = cal.credit(sim, j, negation_differs)
            disagreements.append(disagreement(cal, sim, j))
        else:  # no judge, or a point the embedding decides alone
            credit = cal.credit(sim, None)
        status = "covered" if credit >= cal.covered else "partial" if credit >= cal.partial else "missed"
        best = emb.kp_best[i] if emb and not gate else -1
        evidence = emb.segments[best] if status != "missed" and best >= 0 else None
        results.append(KeyPointResult(
            id=kp.id, text=kp.text, weight=kp.weight, status=status, credit=round(credit, 3),
            evidence=evidence, similarity=round(sim, 3), judge=signal,
            citation=Citation(location=kp.source, quote=kp.quote),
        ))
    misconceptions = _misconceptions(rubric, emb, judge, cal, gate)
    penalty = sum(m.penalty for m in misconceptions if m.detected)
    raw = 10.0 * cal.score(sum(r.weight * r.credit for r in results) / rubric.total_weight)
    score = round(min(10.0, max(0.0, raw - penalty)), 1)
    judged = judge is not None or provenance.judge_status.startswith("skipped")  # skipped: not needed
    certainty = 1.0 if gate else confidence([r.credit for r in results], disagreements, judged)
    dropped = {"instructions_removed": answer.removed, "retractions_removed": answer.retracted,
               "repeats_removed": answer.repeated}
    flags = [flag for flag, sentences in dropped.items() if sentences]
    fragments = not gate and text.fragmented(answer.clean)  # terms in frames, or terse: a person decides
    flags += ["fragments"] if fragments else []
    judge_failed = provenance.judge_status.startswith("unavailable")
    needs_review = not gate and (judge_failed or certainty < cal.review_confidence or bool(answer.removed)
                                 or fragments)
    strengths = [r.text for r in results if r.status == "covered"]
    gaps = [r.text for r in results if r.status != "covered"]
    return GradeResult(
        question_id=rubric.question.id,
        question=rubric.question.title,
        score=score,
        key_points=results,
        misconceptions=misconceptions,
        needs_review=needs_review,
        confidence=round(min(1.0, max(0.0, certainty)), 2),
        gate=gate,
        flags=flags,
        removed_text=answer.removed,
        strengths=strengths,
        gaps=gaps,
        feedback=feedback.compose(score, results, misconceptions, gate, provenance, fragments),
        reference_answer=rubric.question.short_answer,
        provenance=provenance.model_copy(update={"engine_version": __version__}),
    )


def disagreement(cal: Calibration, sim: float, judge: float) -> float:
    """How far apart the credits the embedding alone and the judge alone would give a key point."""
    return abs(cal.embedding_only.credit(sim) - cal.judge_only.credit(0.0, judge))


def confidence(credits: list[float], disagreements: list[float], judged: bool) -> float:
    """0..1: how decisive the key points' credits are (near 0 or 1, not 0.5), less the largest
    disagreement between the two signals on a judged point; lower without the judge. Grades below
    `Calibration.review_confidence` are the ones most often wrong (bench/quality: "review")."""
    decisiveness = sum(abs(2 * c - 1) for c in credits) / len(credits)
    return decisiveness * (1 - max(disagreements, default=0.0)) * (1.0 if judged else 0.7)


def _judge_signal(p: float, p_null: float, p_ref: float) -> JudgeSignal:
    """The judge's P(yes) as the result shows it: for the answer and for both baselines."""
    return JudgeSignal(p_yes=round(p, 4), p_yes_null=round(p_null, 4), p_yes_reference=round(p_ref, 4))


def _misconceptions(rubric, emb, judge, cal, gate) -> list[MisconceptionResult]:
    out = []
    for i, m in enumerate(rubric.misconceptions):
        detected, evidence, signal = False, None, None
        if emb and judge and not gate and i < len(judge.misconceptions) and judge.misconceptions[i]:
            p, p_null, p_ref = judge.misconceptions[i]
            signal = _judge_signal(p, p_null, p_ref)
            # The reference answer is correct and on the same topic: how readily the judge says yes
            # to it is how far it confuses talking about a misconception with stating it.
            detected = (emb.mis_sim[i] >= cal.misconception_similarity
                        and logit_delta(p, p_null) >= cal.misconception_judge
                        and logit_delta(p, p_ref) >= cal.misconception_margin)
            if detected and emb.mis_best[i] >= 0:
                evidence = emb.segments[emb.mis_best[i]]
        out.append(MisconceptionResult(id=m.id, text=m.text, detected=detected,
                                       penalty=m.penalty if detected else 0.0, evidence=evidence,
                                       similarity=round(emb.mis_sim[i], 3) if emb and not gate else None,
                                       judge=signal))
    return out
