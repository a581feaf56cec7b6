"""The terminal practice session (`interviewer practice`) and history (`interviewer history`).

Presentation only: sessions, grading and storage are `sessions.Interviews`', so every attempt
lands in the same database as the API's. Colours, wrapping and a spinner on a terminal; plain
text when stdout is not one.
"""

from __future__ import annotations

import select
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import render
from .bank import plain
from .errors import InterviewerError
from .service import background_thread
from .sessions import Interviews, Order, Report
from .store import AttemptRecord, Store

COMMANDS = {
    ":hint": "reveal the topic of one key point you have not been shown yet",
    ":skip": "skip this question (it counts as 0)",
    ":repeat": "show the question again",
    ":quit": "end the session now (your answers so far are saved)",
    ":help": "show these commands",
}
INSTRUCTIONS = ("Type or paste your answer; several lines are fine. Finish with an empty line, a line with just "
                "'.', or Ctrl-D. Alone on the first line: " + "  ".join(COMMANDS) + ". Ctrl-C stops (answers so "
                "far are saved).")
PASTE_WINDOW_S = 0.05  # an empty line followed this soon by more input is part of a paste


@dataclass
class Answer:
    text: str = ""
    command: str | None = None  # one of COMMANDS, or "eof" when input ended before any text


def read_answer(stream: TextIO, out: Console) -> Answer:
    """Read one multi-line answer, or one command typed alone on the first line.

    The answer ends at an empty line (unless more pasted text follows at once), a line with
    just '.', or end of input (Ctrl-D).
    """
    lines: list[str] = []
    while True:
        if stream.isatty() and not (lines and _more_pending(stream)):  # no prompts inside a paste
            out.print(Text("> " if not lines else "… ", style="dim"), end="")
        raw = stream.readline()
        if not raw:  # end of input
            out.print()
            break
        line = raw.rstrip("\r\n")
        if not lines and line.strip().startswith(":") and len(line.split()) == 1:
            return Answer(command=line.strip().lower())
        if line.strip() == ".":
            break
        if line.strip() or (lines and _more_pending(stream)):
            lines.append(line)
        elif lines:
            break
        if not raw.endswith("\n"):  # Ctrl-D after some text on a terminal
            break
    text = "\n".join(lines).strip()
    return Answer(text) if text or raw else Answer(command="eof")


def _more_pending(stream: TextIO) -> bool:
    """True if more input is already waiting: the empty line was inside a paste."""
    try:
        if not stream.isatty():
            return False
        ready, _, _ = select.select([stream], [], [], PASTE_WINDOW_S)
        return bool(ready)
    except (OSError, ValueError):
        return False


class Practice:
    """One practice session in the terminal."""

    def __init__(self, interviews: Interviews, out: Console, stream: TextIO = sys.stdin, *,
                 use_judge: bool = True):
        self.interviews, self.out, self.stream, self.use_judge = interviews, out, stream, use_judge
        self.session_id: str | None = None
        self.document = None

    def run(self, document=None, *, count: int | None = None, order: Order = "document",
            candidate: str | None = None) -> Report:
        """Ask, grade and show each question; return the session's report.

        KeyboardInterrupt propagates after the session is finished (answers so far are stored);
        the caller shows `self.session_id`'s summary.
        """
        doc = self.interviews.engine.document(document)
        if count is None:
            count = min(5, len(doc.questions))
        session, _ = self.interviews.create(doc.path, n_questions=count, order=order, candidate=candidate)
        self.session_id, self.document = session.id, doc.path
        threading.Thread(target=self._warm_up, daemon=True).start()  # load models while the user types
        out = self.out
        questions = "1 question" if session.total == 1 else f"{session.total} questions"
        out.print(Text.assemble(("Practice: ", "bold"), doc.title, f"  ({questions}, {order} order"
                                + (f", candidate {candidate}" if candidate else "") + ")"))
        out.print(Text(INSTRUCTIONS, style="dim"))
        try:
            while (question := self.interviews.next_question(session.id)) is not None:
                if not self._ask(question):
                    break
        finally:
            self.interviews.finish(session.id)
        return self.interviews.report(session.id)

    def _warm_up(self) -> None:
        """Load the models while the user reads the first question, then get ready to grade it."""
        engine = self.interviews.engine
        background_thread()
        try:
            engine.load(with_judge=self.use_judge)
            question_id = self.interviews.get(self.session_id).current_question_id
            if question_id is not None:
                engine.prepare(question_id, self.document)
        except Exception:  # grading reports the problem when it happens
            pass

    def _ask(self, question) -> bool:
        """Ask one question until it is answered or skipped; False when the user quits."""
        self._show(question)
        hints = self._hints(question.id)
        while True:
            answer = read_answer(self.stream, self.out)
            command = answer.command
            if command in (":quit", "eof"):
                return False
            if command == ":skip":
                self.interviews.skip(self.session_id, question_id=question.id)
                self.out.print(Text("Skipped.", style="yellow"))
                return True
            if command == ":repeat":
                self._show(question)
            elif command == ":hint":
                self.out.print(Text(hints.pop(0), style="cyan") if hints else
                               Text("No more hints for this question.", style="dim"))
            elif command == ":help":
                for name, what in COMMANDS.items():
                    self.out.print(f"  {name:8} {what}")
            elif command is not None:
                self.out.print(Text(f"Unknown command {command}; commands: {'  '.join(COMMANDS)}", style="red"))
            elif not answer.text:
                self.out.print(Text("Empty answer: type your answer, or :skip.", style="dim"))
            else:
                self._grade(question, answer.text)
                return True

    def _show(self, question) -> None:
        self.out.print()
        self.out.rule(Text(f"Question {question.position}/{question.total} · {question.id}", style="bold"))
        self.out.print(Text(plain(question.title), style="bold"))

    def _hints(self, question_id: str) -> list[str]:
        """One hint per key point: the passage it comes from and its first words, not its text."""
        view = self.interviews.question(self.document, question_id, include_reference=True)
        points = sorted(view.reference.key_points, key=lambda kp: -kp.weight)
        hints = []
        for n, kp in enumerate(points, start=1):
            label = kp.citation.location.split(" › ", 1)[-1]
            words = kp.text.split()
            opening = " ".join(words[:3]) + (" …" if len(words) > 3 else "")
            hints.append(f"Hint {n}/{len(points)}: a key point comes from “{label}”; it starts “{opening}”")
        return hints

    def _grade(self, question, text: str) -> None:
        if self.out.is_terminal:
            with self.out.status("Grading your answer…", spinner="dots"):
                attempt = self.interviews.answer(self.session_id, text, question_id=question.id,
                                                 use_judge=self.use_judge)
        else:
            self.out.print("Grading your answer…")
            attempt = self.interviews.answer(self.session_id, text, question_id=question.id,
                                             use_judge=self.use_judge)
        render.result(self.out, attempt.result)


def login_name() -> str | None:
    """The default candidate: the user's login name, if the system knows it."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def summary(out: Console, report: Report) -> None:
    """The end-of-session summary and what to study, with citations."""
    out.print()
    out.rule(Text("Session summary", style="bold"))
    average = f"average {report.average_score:.1f}/10" if report.average_score is not None else "nothing answered"
    out.print(f"{report.answered} answered, {report.skipped} skipped, "
              f"{report.total - report.answered - report.skipped} not asked; {average}.")
    table = Table(show_header=True, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("question", overflow="fold")
    table.add_column("status")
    table.add_column("score", justify="right")
    for item in report.items:
        score = f"{item.score:.1f}" if item.score is not None else "—"
        table.add_row(str(item.position), f"{item.question_id}: {plain(item.title)}", item.status, score)
    out.print(table)
    if report.study:
        out.print(Text("What to study:", style="bold"))
        for citation in report.study:
            out.print(Text.assemble(("  " + citation.location, "cyan"), ": \u201c", plain(citation.quote), "\u201d"))
    out.print(Text(f"Session {report.session_id} is saved; see `interviewer history`.", style="dim"))


# -- history ----------------------------------------------------------------------------------

def history(store: Store, out: Console, candidate: str | None = None, *, sessions: int = 20) -> None:
    """Past sessions, newest first, and per-question progress (attempts, best and last score)."""
    attempts = store.attempts(candidate=candidate)  # oldest first
    who = f" for {candidate}" if candidate else ""
    if not attempts:
        out.print(f"No attempts yet{who}. Start with `interviewer practice`.")
        return
    several = len({a.candidate for a in attempts}) > 1
    by_session: dict[str, list[AttemptRecord]] = defaultdict(list)
    for a in attempts:
        if a.session_id:
            by_session[a.session_id].append(a)
    records = {sid: store.session(sid) for sid in by_session}

    table = _table(f"Sessions{who}", ["started", "candidate"] if several else ["started"],
                   ["document", "answered", "skipped", "average", "state", "session"])
    recent = sorted(by_session.items(), key=lambda kv: kv[1][0].created_at, reverse=True)[:sessions]
    for session_id, rows in recent:
        s = records[session_id]
        answered = sum(a.status == "answered" for a in rows)
        average = sum(a.score or 0.0 for a in rows) / len(rows)  # a skip counts 0, as in the session report
        cells = [_when(s.created_at if s else rows[0].created_at)] + ([rows[0].candidate or "—"] if several else [])
        table.add_row(*cells, _stem(rows[0].document), f"{answered}/{s.total if s else len(rows)}",
                      str(len(rows) - answered), f"{average:.1f}", s.state if s else "?", session_id[:8])
    out.print(table)
    if len(by_session) > sessions:
        out.print(Text(f"({len(by_session) - sessions} older sessions not shown)", style="dim"))
    outside = sum(1 for a in attempts if not a.session_id)
    if outside:
        out.print(Text(f"{outside} answers were graded outside sessions (API); they count below.", style="dim"))

    titles = _titles(attempts, records)
    per_question: dict[tuple, list[AttemptRecord]] = defaultdict(list)
    for a in attempts:
        per_question[(a.document, a.candidate or "—", a.question_id)].append(a)
    for document in sorted({k[0] for k in per_question}):
        progress = _table(f"Per-question progress: {_stem(document)}", ["candidate"] if several else [],
                          ["question", "tries", "best", "last", "trend", "last tried"])
        for key in sorted((k for k in per_question if k[0] == document), key=lambda k: (k[1], _natural(k[2]))):
            rows = per_question[key]
            scores = [a.score if a.status == "answered" else 0.0 for a in rows]
            last = rows[-1]
            title = titles.get((document, key[2]))
            progress.add_row(*([key[1]] if several else []), f"{key[2]}: {title}" if title else key[2],
                             str(len(rows)), f"{max(scores):.1f}",
                             "skipped" if last.status == "skipped" else f"{last.score:.1f}", _trend(scores),
                             _when(last.created_at))
        out.print(progress)


def _table(title: str, lead: list[str], columns: list[str]) -> Table:
    """A table whose only wrapping column is the question; the others keep their width."""
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for name in lead + columns:
        if name in ("question", "document"):
            table.add_column(name, overflow="fold")
        else:
            numeric = name in ("answered", "skipped", "average", "tries", "best", "last")
            table.add_column(name, no_wrap=True, min_width=len(name), justify="right" if numeric else "left")
    return table


def _titles(attempts: list[AttemptRecord], sessions: dict) -> dict[tuple[str, str], str]:
    """(document, question id) -> question title, from results or else from the session's document."""
    from . import bank

    titles = {(a.document, a.question_id): plain(a.result.question) for a in attempts if a.result}
    for a in attempts:
        s = sessions.get(a.session_id)
        if (a.document, a.question_id) not in titles and s is not None:
            try:
                titles[(a.document, a.question_id)] = plain(bank.load(s.document_path).question(a.question_id).title)
            except InterviewerError:
                pass  # the document moved or changed; the id is enough
    return titles


def _stem(document: str) -> str:
    return document.rsplit(".", 1)[0]


def _trend(scores: list[float]) -> str:
    if len(scores) < 2:
        return "new"
    delta = scores[-1] - scores[-2]
    return "up" if delta > 0.5 else "down" if delta < -0.5 else "same"


def _when(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%b %d %H:%M")
    except ValueError:
        return stamp


def _natural(qid: str) -> tuple:
    digits = "".join(ch for ch in qid if ch.isdigit())
    return (int(digits) if digits else 0, qid)
