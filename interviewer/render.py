"""Readable terminal output for a GradeResult (colours on a terminal, plain text elsewhere)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .bank import plain
from .feedback import FRAGMENTS_NOTE, judge_note
from .schema import GradeResult

STATUS_STYLE = {"covered": "green", "partial": "yellow", "missed": "red"}


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def result(out: Console, r: GradeResult, *, show_reference: bool = True) -> None:
    colour = "green" if r.score >= 7 else "yellow" if r.score >= 4 else "red"
    head = Text.assemble(("Score ", "bold"), (f"{r.score:.1f}/10", f"bold {colour}"),
                         f"   confidence {r.confidence:.2f}")
    if r.needs_review:
        head.append("   needs review", style="bold magenta")
    out.print(head)
    if r.gate:
        out.print(Text(r.gate.message, style="bold red"))
    if note := judge_note(r.provenance):
        out.print(Text(f"Note: {note}", style="magenta"))
    if r.removed_text:
        out.print(Text("Ignored text addressed to the grader: " + " | ".join(r.removed_text), style="magenta"))
    if "retractions_removed" in r.flags:
        out.print(Text("Claims you took back (“…, or maybe not”) were not counted.", style="magenta"))
    if "fragments" in r.flags:
        out.print(Text(f"Note: {FRAGMENTS_NOTE}", style="magenta"))
    if "repeats_removed" in r.flags:
        out.print(Text("Sentences you said again were counted once.", style="magenta"))
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("key point", overflow="fold", ratio=3)
    table.add_column("status", no_wrap=True)
    table.add_column("credit", justify="right", no_wrap=True)  # what the point adds to the score
    table.add_column("your words", overflow="fold", ratio=2)
    for kp in r.key_points:
        point = Text(kp.text)
        if kp.weight != 1:
            point.append(f" (weight {kp.weight:g})", style="dim")
        table.add_row(point, Text(kp.status, style=STATUS_STYLE[kp.status]), f"{kp.credit:.0%}", kp.evidence or "—")
    out.print(table)
    for m in r.misconceptions:
        if m.detected:
            out.print(Text(f"Misconception (-{m.penalty:g}): {m.text}", style="red"))
    study = [kp for kp in r.key_points if kp.status != "covered"]
    if study:
        out.print(Text("Study these passages:", style="bold"))
        for kp in study:
            out.print(Text.assemble(("  " + kp.citation.location, "cyan"), ": \u201c", kp.citation.quote, "\u201d"))
    if show_reference:
        out.print(Text.assemble(("Reference answer: ", "bold"), plain(r.reference_answer)))
    p = r.provenance
    judge = p.judge.id if p.judge else "none"
    out.print(Text(f"[rubric {p.rubric_version}{'' if p.rubric_curated else ' (drafted)'} · embedder "
                   f"{p.embedder.id} · judge {judge} ({p.judge_status}) · {p.calibration}]", style="dim"))
