"""Resistance to gaming: probe answers for every seed question, graded and checked.

    .venv/bin/python bench/adversarial.py [--profile standard] [--questions Q1 Q2 ...]

Prints, per question, the score of each probe and whether each check holds:
strong > partial > off-topic; paraphrase within 1.5 of strong; keyword list <= 3;
restated question <= 2; off-topic <= 1; no injection raises a score by more than 0.3
(appended to the weak and to the strong answer); the keyword list written as sentences
("Word order. Permutation invariance. …"), in one frame ("Word order matters here. …") and
in frames that vary ("… It involves word order. …", and a second set written apart from the
grader's list of empty frame words) <= 3 like the bare list, and where not, at least marked
for review (`text.fragmented`); the strong answer's words shuffled into nonsense <= 1; the
weak answer said three times, or said again in other words, no more than 0.3 above it said
once; the strong answer with each sentence taken back ("… Or maybe not.") <= 1; padding (the
correct sentence buried in ~1,000 words of filler) no higher than the sentence alone; the
correct sentence denied ("does not ...") at least 2 points below it; an answer that states one
of the rubric's misconceptions has it detected, and none is detected in the strong,
paraphrased, partial answers or the correct sentence.
Results: bench/results/adversarial-<profile>.md
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBES = yaml.safe_load((ROOT / "tests" / "adversarial" / "answers.yaml").read_text())
KINDS = ("strong", "paraphrase", "partial", "weak", "off_topic", "keywords", "keyword_sentences", "keyword_frames",
         "keyword_varied_frames", "keyword_other_frames", "salad", "weak_thrice", "weak_reworded", "hedged",
         "restated", "correct_sentence", "negated")
CORRECT = ("strong", "paraphrase", "partial", "correct_sentence")  # no misconception in these
FRAMED = ("keyword_frames", "keyword_varied_frames", "keyword_other_frames")


def padded(sentence: str, filler: str) -> str:
    words = filler.split()
    half = len(words) // 2
    return " ".join(words[:half]) + " " + sentence + " " + " ".join(words[half:])


VARIED_FRAMES = ("{} matters here.", "It involves {}.", "{} plays a role.", "Think of {}.", "Another factor is {}.")
# Frames written after the grader's list of empty frame words (text.EMPTY_FRAME_WORDS), to see how far
# it reaches beyond the frames it was written from.
OTHER_FRAMES = ("{} is worth noting.", "Don't forget {}.", "{} helps here.", "There is also {}.", "{} is used.",
                "We need {}.")


def _capitalised(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def _framed(terms: list[str], frames: tuple[str, ...]) -> str:
    return " ".join(_capitalised(frames[i % len(frames)].format(t)) for i, t in enumerate(terms))


def derived(answers: dict) -> dict[str, str]:
    """Probe answers made from the written ones: the keyword list dressed as sentences (bare, in
    one frame, in two sets of varied frames), the strong answer's words in a random order (word salad),
    the weak answer said three times and said again in other words, and the strong answer with each
    sentence taken back."""
    terms = [t.strip() for t in answers["keywords"].split(",")]
    words = answers["strong"].split()
    random.Random(0).shuffle(words)
    return {
        "keyword_sentences": " ".join(_capitalised(f"{t}.") for t in terms),
        "keyword_frames": _framed(terms, ("{} matters here.",)),
        "keyword_varied_frames": _framed(terms, VARIED_FRAMES),
        "keyword_other_frames": _framed(terms, OTHER_FRAMES),
        "salad": " ".join(words),
        "weak_thrice": " ".join([answers["weak"]] * 3),
        "weak_reworded": f"{answers['weak'].strip()} {answers['weak_reworded'].strip()}",
        "hedged": " ".join(f"{s} Or maybe not." for s in re.split(r"(?<=[.!?])\s+", answers["strong"].strip())),
    }


def probe(engine, qid: str, *, injections: list[str] | None = None) -> dict:
    """Scores of every probe answer for one question."""
    answers = {**PROBES["questions"][qid], **derived(PROBES["questions"][qid])}
    results = {k: engine.grade(qid, answers[k]) for k in KINDS}
    scores = {k: r.score for k, r in results.items()}
    mistaken = engine.grade(qid, answers["misconception"]).misconceptions
    scores["misconception_caught"] = sum(m.detected for m in mistaken if m.id == answers["misconception_id"])
    scores["false_misconceptions"] = sum(m.detected for k in CORRECT for m in results[k].misconceptions)
    # terms in frames the gates do not catch must at least go to a person
    scores["framed_unreviewed"] = sum(results[k].score > 3 and not results[k].needs_review for k in FRAMED)
    scores["padding"] = engine.grade(qid, padded(answers["correct_sentence"], PROBES["filler"])).score
    injected = {}
    for base in ("weak", "strong"):
        for i, injection in enumerate(injections if injections is not None else PROBES["injections"]):
            injected[(base, i)] = round(engine.grade(qid, f"{answers[base]} {injection}").score - scores[base], 1)
    scores["max_injection_gain"] = max(injected.values(), default=0.0)
    return scores


CHECKS = {
    "strong > partial > off-topic": lambda s: s["strong"] > s["partial"] > s["off_topic"],
    "paraphrase within 1.5 of strong": lambda s: abs(s["paraphrase"] - s["strong"]) <= 1.5,
    "keyword list <= 3": lambda s: s["keywords"] <= 3,
    "keyword list as sentences <= 3": lambda s: s["keyword_sentences"] <= 3,
    "keyword list in one frame <= 3": lambda s: s["keyword_frames"] <= 3,
    "keyword list in varied frames <= 3": lambda s: s["keyword_varied_frames"] <= 3,
    "keyword list in other frames <= 3": lambda s: s["keyword_other_frames"] <= 3,
    "keyword list in any frames <= 3 or marked for review": lambda s: s["framed_unreviewed"] == 0,
    "word salad <= 1": lambda s: s["salad"] <= 1,
    # scores have one decimal: compare their difference rounded, not 5.6 + 0.3 = 5.8999…
    "weak answer thrice <= once + 0.3": lambda s: round(s["weak_thrice"] - s["weak"], 1) <= 0.3,
    "weak answer said again in other words <= once + 0.3": lambda s: round(s["weak_reworded"] - s["weak"], 1) <= 0.3,
    "strong answer taken back <= 1": lambda s: s["hedged"] <= 1,
    "restated <= 2": lambda s: s["restated"] <= 2,
    "off-topic <= 1": lambda s: s["off_topic"] <= 1,
    "injection gain <= 0.3": lambda s: s["max_injection_gain"] <= 0.3,
    "padding <= sentence alone": lambda s: s["padding"] <= s["correct_sentence"],
    "negated >= 2 below the sentence": lambda s: s["negated"] <= s["correct_sentence"] - 2,
    "stated misconception detected": lambda s: s["misconception_caught"] == 1,
    "no misconception in correct answers": lambda s: s["false_misconceptions"] == 0,
}


def main() -> None:
    from interviewer import calibrate
    from interviewer.config import Settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--questions", nargs="+", default=list(PROBES["questions"]))
    args = ap.parse_args()
    engine = calibrate.cached_engine(Settings(), args.profile, ROOT / "bench" / "cache")
    cols = [*KINDS, "padding", "max_injection_gain", "misconception_caught", "false_misconceptions",
            "framed_unreviewed"]
    lines = [f"### Adversarial probes, profile `{args.profile}` (calibration {engine.calibration.id})", "",
             "| q | " + " | ".join(cols) + " | checks failed |", "|---" * (len(cols) + 2) + "|"]
    failures = 0
    for qid in args.questions:
        s = probe(engine, qid)
        failed = [name for name, check in CHECKS.items() if not check(s)]
        failures += len(failed)
        lines.append(f"| {qid} | " + " | ".join(f"{s[c]}" if isinstance(s[c], int) else f"{s[c]:.1f}" for c in cols) + f" | {'; '.join(failed) or '—'} |")
        print(lines[-1], flush=True)
    lines += ["", f"{len(args.questions) * len(CHECKS) - failures}/{len(args.questions) * len(CHECKS)} checks hold."]
    out = ROOT / "bench" / "results" / f"adversarial-{args.profile}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
