"""Question documents: parse any document in the seed's Markdown format into questions.

A document looks like::

    # Title
    ## Q1: Question text
    **Answer:**
    short answer ...
    **Reasoning & Deep Dive:**
    *   **Label:** passage ...
        *   nested passage ...
    ---

Every answer and Deep Dive line becomes an addressable `Passage` ("Q4 › Deep Dive › Why
Sine/Cosine?") whose `text` is a verbatim slice of the document, so a citation can quote it
exactly and be checked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import DocumentError, UnknownQuestion

SEP = " › "
_QUESTION = re.compile(r"^##\s+Q(\d+)\s*:\s*(\S.*)$")
_ITEM = re.compile(r"^(\s*)(?:[*+-]|\d+[.)])\s+(.*)$")
_LABEL = re.compile(
    r"^(?:\*\*(?P<b>[^*]+?):?\*\*:?|\*(?P<i>[^*\s][^*]*?)\*(?=\s)|(?P<p>[A-Za-z$][^:.!?]{0,40}?):(?=\s))"
)
_ALTERNATIVES = "Other acceptable answers:"
ANSWER, DEEP_DIVE = "Answer", "Deep Dive"


@dataclass(frozen=True)
class Passage:
    """One quotable piece of a question: `text` occurs verbatim in the document."""

    location: str
    text: str
    section: str  # ANSWER or DEEP_DIVE
    line: int

    @property
    def plain(self) -> str:
        return plain(self.text)


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    answer: str
    deep_dive: str
    passages: tuple[Passage, ...]
    alternatives: tuple[str, ...] = ()
    line: int = 0

    def passage(self, location: str) -> Passage | None:
        return next((p for p in self.passages if p.location == location), None)

    @property
    def short_answer(self) -> str:
        """The Answer section without its list of alternative answers."""
        return self.answer.split(_ALTERNATIVES)[0].strip()


@dataclass(frozen=True)
class Document:
    path: Path
    title: str
    text: str
    questions: dict[str, Question] = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def name(self) -> str:
        return self.path.stem

    def question(self, qid: str) -> Question:
        key = qid.strip().upper()
        if key.isdigit():
            key = f"Q{key}"
        try:
            return self.questions[key]
        except KeyError:
            known = ", ".join(self.questions)
            raise UnknownQuestion(f"{self.path.name} has no question {qid!r}; it has {known}") from None

    def contains(self, quote: str) -> bool:
        return bool(quote) and quote in self.text


def plain(text: str) -> str:
    """Markdown emphasis and code marks removed; LaTeX and wording kept."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    text = text.replace("`", "")
    return re.sub(r"[ \t]+", " ", text).strip()


def _label(body: str) -> str | None:
    m = _LABEL.match(body)
    if not m:
        return None
    return (m.group("b") or m.group("i") or m.group("p")).strip().rstrip(":")


class _Parser:
    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def fail(self, lineno: int, expected: str) -> DocumentError:
        got = self.lines[lineno - 1].strip() if 0 < lineno <= len(self.lines) else "end of file"
        return DocumentError(f"{self.path}:{lineno}: expected {expected}, found {got[:60]!r}")

    def parse(self) -> tuple[str, dict[str, Question]]:
        title, blocks, current = "", [], None
        for n, line in enumerate(self.lines, 1):
            if line.startswith("# ") and not title and current is None:
                title = line[2:].strip()
            elif line.startswith("## "):
                if not _QUESTION.match(line):
                    raise self.fail(n, "a question header like '## Q1: What is ...?'")
                current = [n]
                blocks.append(current)
            elif current is not None:
                current.append(n)
        if not blocks:
            raise self.fail(len(self.lines) + 1, "at least one question header '## Q1: ...'")
        questions: dict[str, Question] = {}
        for block in blocks:
            q = self.question(block)
            if q.id in questions:
                raise self.fail(block[0], f"a new question id, but {q.id} appears twice")
            questions[q.id] = q
        return title or self.path.stem, questions

    def question(self, block: list[int]) -> Question:
        head = _QUESTION.match(self.lines[block[0] - 1])
        qid, title = f"Q{int(head.group(1))}", head.group(2).strip()
        sections: dict[str, list[int]] = {}
        section = None
        for n in block[1:]:
            stripped = self.lines[n - 1].strip()
            if stripped == "**Answer:**":
                section = sections.setdefault(ANSWER, [])
            elif stripped.startswith("**Reasoning") and stripped.endswith(":**"):
                if ANSWER not in sections:
                    raise self.fail(n, f"'**Answer:**' before the Deep Dive of {qid}")
                section = sections.setdefault(DEEP_DIVE, [])
            elif stripped == "---":
                section = None
            elif section is not None:
                section.append(n)
            elif stripped:
                raise self.fail(n, f"'**Answer:**' or '**Reasoning & Deep Dive:**' in {qid}")
        if not any(self.lines[n - 1].strip() for n in sections.get(ANSWER, [])):
            raise self.fail(block[0] + 1, f"'**Answer:**' followed by the short answer of {qid}")
        passages, alternatives = [], ()
        texts = {}
        for name, numbers in sections.items():
            found, alts = self._passages(qid, name, numbers)
            passages += found
            alternatives = alternatives or alts
            texts[name] = "\n".join(self.lines[n - 1] for n in numbers).strip()
        return Question(
            id=qid,
            title=title,
            answer=texts[ANSWER],
            deep_dive=texts.get(DEEP_DIVE, ""),
            passages=tuple(passages),
            alternatives=alternatives,
            line=block[0],
        )

    def _passages(self, qid: str, section: str, numbers: list[int]):
        root = f"{qid}{SEP}{section}"
        out: list[Passage] = []
        alternatives: tuple[str, ...] = ()
        stack: list[tuple[int, str]] = []  # (indent, location) of open list items
        counts: dict[str, int] = {}
        used: set[str] = set()
        for n in numbers:
            line = self.lines[n - 1]
            if not line.strip():
                continue
            item = _ITEM.match(line)
            if item:
                indent, body = len(item.group(1).expandtabs(4)), item.group(2).rstrip()
                while stack and stack[-1][0] >= indent:
                    stack.pop()
                parent = stack[-1][1] if stack else root
            elif stack and line[:1].isspace():
                # An indented continuation of the previous item: extend its passage.
                last = out[-1]
                out[-1] = Passage(last.location, last.text + "\n" + line.rstrip(), last.section, last.line)
                continue
            else:
                stack, parent, indent, body = [], root, -1, line.strip()
                if body.startswith(_ALTERNATIVES):
                    alternatives = tuple(a.strip() for a in body[len(_ALTERNATIVES):].split("|") if a.strip())
            counts[parent] = counts.get(parent, 0) + 1
            name = _label(body) or str(counts[parent])
            location = f"{parent}{SEP}{name}"
            if location in used:  # two items with the same label: keep both addressable
                location = f"{location} ({counts[parent]})"
            used.add(location)
            out.append(Passage(location, body, section, n))
            if item:
                stack.append((indent, location))
        if section == ANSWER and len(out) == 1:
            out[0] = Passage(root, out[0].text, section, out[0].line)
        elif section == ANSWER and out:
            text = "\n".join(self.lines[n - 1] for n in numbers).strip()
            out.insert(0, Passage(root, text, section, numbers[0]))
        return out, alternatives


def parse(text: str, path: Path | str = "<text>") -> Document:
    path = Path(path)
    title, questions = _Parser(path, text).parse()
    return Document(path=path, title=title, text=text, questions=questions)


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int) -> Document:
    return parse(path.read_text(encoding="utf-8"), path)


def resolve(path: Path | str) -> Path:
    """The absolute path with symlinks resolved; remembered for absolute paths, because resolving
    costs a system call per path component and a server looks its documents up on every request."""
    path = Path(path).expanduser()
    return _resolve_absolute(path) if path.is_absolute() else path.resolve()


@lru_cache(maxsize=256)
def _resolve_absolute(path: Path) -> Path:
    return path.resolve()


def load(path: Path | str) -> Document:
    path = resolve(path)
    try:
        return _load(path, path.stat().st_mtime_ns)
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such question document; pass --doc with a path to a .md file") from None
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
