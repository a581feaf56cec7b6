"""Readable, cited feedback. Every quote must occur verbatim in the question document."""

from __future__ import annotations

from .bank import Document
from .errors import RubricError
from .schema import Gate, GradeResult, KeyPointResult, MisconceptionResult, Provenance

FRAGMENTS_NOTE = ("your answer is a run of short fragments, and the grader cannot tell terms named from "
                  "claims made. In an interview, say in full sentences how the ideas connect.")


def judge_note(provenance: Provenance) -> str | None:
    """What to tell the reader when the judge could not run (the grade then rests on the embedding)."""
    if not provenance.judge_status.startswith("unavailable"):
        return None
    return (f"the judge model was {provenance.judge_status}; this grade uses the embedding signal only and "
            "is marked for review.")


def compose(score: float, points: list[KeyPointResult], misconceptions: list[MisconceptionResult],
            gate: Gate | None, provenance: Provenance, fragments: bool = False) -> str:
    lines = [f"Score {score:.1f}/10."]
    if gate:
        lines.append(gate.message)
    covered = [p for p in points if p.status == "covered"]
    partial = [p for p in points if p.status == "partial"]
    missed = [p for p in points if p.status == "missed"]
    if covered and not gate:
        lines.append("You covered: " + "; ".join(p.text for p in covered))
    if partial:
        lines.append("Partly covered: " + "; ".join(p.text for p in partial))
    if missed:
        lines.append("Missing: " + "; ".join(p.text for p in missed))
    for m in misconceptions:
        if m.detected:
            lines.append(f"Misconception (-{m.penalty:g}): {m.text}")
    study = partial + missed
    if study:
        lines.append("Study:")
        lines += [f"  {p.citation.location}: \u201c{p.citation.quote}\u201d" for p in study]
    if fragments:
        lines.append(f"Note: {FRAGMENTS_NOTE} This grade is marked for review.")
    if note := judge_note(provenance):
        lines.append(f"Note: {note}")
    return "\n".join(lines)


def check_citations(result: GradeResult, document: Document) -> None:
    """Raise if any quoted passage is not verbatim in the document (a rubric/document mismatch)."""
    for kp in result.key_points:
        if not document.contains(kp.citation.quote):
            raise RubricError(f"citation for {result.question_id}/{kp.id} is not in {document.path.name}: "
                              f"{kp.citation.quote!r}")
