"""Batch grading of recorded answers: read rows, grade them, append results, resume, report.

Framework-free and reusable: the CLI (`interviewer grade ANSWERS`) and the API's batch jobs use
the same pieces.

- `read_rows(source, fmt)` parses JSONL or CSV into `Row` (gradable) or `RowError` (with a
  message naming the input line): missing id, duplicate id, empty answer, not UTF-8, a
  malformed JSON line or CSV record.
- `grade_row(engine, row, doc, use_judge)` turns one of them into an output record (a dict):
  `id, line, status, score, error, question, candidate, <extra columns>, result`.
- `BatchJob` runs a whole file into an output file, appending and fsyncing each record as it
  is done. Running it again resumes: rows already in the output are skipped, a torn last
  record (a crash mid-write) is dropped, and a sidecar `<out>.meta.json` holding the input's
  sha256, the document's and the options makes it refuse to mix results of different runs.
  Since the input is verified unchanged, a row is identified by its `line` (which, unlike the
  id, exists and is unique even for bad rows); for good rows this is the same as by id.
- `report(records)` writes a Markdown summary.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import sys
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import InputError, UnknownQuestion

FORMATS = ("jsonl", "csv")
REQUIRED = ("id", "question", "answer")
# Output columns in order; the input's extra columns go between BASE and "result".
BASE = ("id", "line", "status", "score", "error", "question", "candidate")
RESERVED = set(BASE) | {"answer", "result"}
META_VERSION = 1
PREFETCH = 256  # rows whose sentences are embedded together


@dataclass(frozen=True)
class Row:
    """One gradable input row. `line` is the 1-based input line where it starts."""

    line: int
    id: str
    question: str
    answer: str
    candidate: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    """An input row that cannot be graded; `message` names the line and the problem."""

    line: int
    message: str
    id: str | None = None
    question: str | None = None
    candidate: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- reading ------------------------------------------------------------------------------

def detect_format(name: str | Path) -> str:
    """'jsonl' or 'csv' from a file name's extension."""
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv",):
        return "csv"
    raise InputError(f"cannot tell the format of {Path(name).name!r} from its extension; "
                     "use .jsonl or .csv, or pass --format jsonl|csv")


def read_rows(source: Path | str | bytes, fmt: str | None = None) -> Iterator[Row | RowError]:
    """Parse answers from a JSONL or CSV file (a path) or its raw bytes.

    Fields: `id`, `question` (question id in the document, e.g. Q3), `answer`; optional
    `candidate`; any other field is carried through to the output as an extra column.
    Yields a `Row` per gradable row and a `RowError` per row that is not; blank lines are
    skipped. Raises `InputError` only when the whole file is unusable (a CSV without the
    required header columns, an unknown format).
    """
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        if fmt is None:
            raise InputError("the format (jsonl or csv) is needed to read raw bytes")
    else:
        fmt = fmt or detect_format(source)
        data = Path(source).read_bytes()
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    raw = _jsonl_records(data) if fmt == "jsonl" else _csv_records(data)
    seen: dict[str, int] = {}
    for item in raw:
        row = item if isinstance(item, RowError) else _validate(*item)
        if row.id is not None:
            if row.id in seen:
                row = _error(row, f"duplicate id {row.id!r} (first used at line {seen[row.id]})")
            else:
                seen[row.id] = row.line
        yield row


def _jsonl_records(data: bytes) -> Iterator[tuple[int, dict] | RowError]:
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RowError(number, f"line {number}: not valid UTF-8 (byte {raw[exc.start]:#04x} at "
                                   f"column {exc.start + 1})")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RowError(number, f"line {number}: malformed JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield RowError(number, f"line {number}: expected a JSON object, got {type(obj).__name__}")
            continue
        if any("\ud800" <= ch <= "\udfff" for v in obj.values() if isinstance(v, str) for ch in v):
            yield RowError(number, f"line {number}: text contains an unpaired surrogate escape such as "
                                   "\\ud800, which is not valid Unicode")
            continue
        yield number, obj


def _csv_records(data: bytes) -> Iterator[tuple[int, dict] | RowError]:
    # surrogateescape keeps undecodable bytes as lone surrogates, so one bad row does not
    # stop the file; such rows are reported below.
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(f"line 1: malformed CSV header ({exc})") from None
    missing = [name for name in REQUIRED if name not in header]
    if missing or _has_surrogates(header):
        raise InputError(f"line 1: the CSV header needs the columns {', '.join(REQUIRED)}; "
                         f"found {', '.join(header) or 'nothing'}")
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InputError(f"line 1: the CSV header repeats the column(s) {', '.join(dupes)}")
    previous = reader.line_num
    while True:
        start = previous + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(start, f"line {start}: malformed CSV record ({exc})")
            previous = reader.line_num
            continue
        previous = reader.line_num
        if not fields or fields == [""]:
            continue
        if len(fields) != len(header):
            yield RowError(start, f"line {start}: malformed CSV record ({len(fields)} fields, the header "
                                  f"has {len(header)})")
            continue
        obj = dict(zip(header, fields))
        if _has_surrogates(fields):
            bad = next(name for name, value in obj.items() if _has_surrogates([value]))
            clean_id = obj["id"] if not _has_surrogates([obj["id"]]) else None
            yield RowError(start, f"line {start}: not valid UTF-8 (in column {bad!r})", id=_text(clean_id))
            continue
        yield start, obj


def _has_surrogates(values: Iterable[str]) -> bool:
    return any("\udc80" <= ch <= "\udcff" for value in values for ch in value)


def _text(value: Any) -> str | None:
    """A scalar as stripped text; None for missing, empty or non-scalar values."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    value = str(value).strip()
    return value or None


def _validate(line: int, obj: dict) -> Row | RowError:
    extra = {(f"input_{k}" if k in RESERVED else k): v for k, v in obj.items()
             if k not in ("id", "question", "answer", "candidate")}
    row_id, question, candidate = _text(obj.get("id")), _text(obj.get("question")), _text(obj.get("candidate"))
    answer = obj.get("answer")

    def error(message: str) -> RowError:
        return RowError(line, f"line {line}: {message}", id=row_id, question=question,
                        candidate=candidate, extra=extra)

    if row_id is None:
        return error("missing id")
    if question is None:
        return error("missing question (a question id of the document, e.g. Q3)")
    if answer is not None and not isinstance(answer, str):
        return error(f"the answer must be text, got {type(answer).__name__}")
    if answer is None or not answer.strip():
        return error("empty answer")
    return Row(line, row_id, question, answer, candidate, extra)


def _error(row: Row | RowError, problem: str) -> RowError:
    return RowError(row.line, f"line {row.line}: {problem}", id=row.id, question=row.question,
                    candidate=row.candidate, extra=row.extra)


# -- grading ------------------------------------------------------------------------------

def grade_row(engine, row: Row | RowError, doc: Path | str | None = None, use_judge: bool = True) -> dict:
    """Grade one row with `engine` (an `Engine`) and return its output record.

    A `RowError`, or a row whose question the document does not have, becomes an `error`
    record; other failures (a model that cannot load, a broken rubric) propagate, since they
    would fail every row.
    """
    record = {"id": row.id, "line": row.line, "status": "error", "score": None, "error": None,
              "question": row.question, "candidate": row.candidate, **row.extra, "result": None}
    if isinstance(row, RowError):
        record["error"] = row.message
        return record
    try:
        result = engine.grade(row.question, row.answer, doc=doc, use_judge=use_judge)
    except (UnknownQuestion, InputError) as exc:
        record["error"] = f"line {row.line}: {exc}"
        return record
    record.update(status="graded", score=result.score, result=result.model_dump(mode="json"))
    return record


def by_question(rows: Iterable[Row | RowError]) -> list[Row | RowError]:
    """Rows grouped by question (in order of first appearance), so the judge reuses the cached
    question part of its prompt between consecutive answers."""
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault((row.question or "").upper(), []).append(row)
    return [row for group in groups.values() for row in group]


# -- output file --------------------------------------------------------------------------

class _Output:
    """An append-only results file (JSONL or CSV) whose every record is fsynced."""

    def __init__(self, path: Path, fmt: str, columns: list[str]):
        self.path, self.fmt, self.columns = path, fmt, columns

    def encode(self, record: dict) -> str:
        if self.fmt == "jsonl":
            return json.dumps(record, ensure_ascii=False) + "\n"
        buf = io.StringIO()
        csv.writer(buf).writerow([_cell(record.get(c)) for c in self.columns])
        return buf.getvalue()

    def header(self) -> str:
        if self.fmt == "jsonl":
            return ""
        buf = io.StringIO()
        csv.writer(buf).writerow(self.columns)
        return buf.getvalue()

    def load(self) -> tuple[list[dict], bool]:
        """The complete records already written, and whether the file must be rewritten
        (a torn or unreadable record was dropped, or the last record lacks its line end)."""
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        if not text:
            return [], True
        records, dirty = (self._load_jsonl if self.fmt == "jsonl" else self._load_csv)(text)
        lines: set[int] = set()
        unique = []
        for record in records:
            if record["line"] not in lines:
                lines.add(record["line"])
                unique.append(record)
        return unique, dirty or len(unique) != len(records) or not text.endswith("\n")

    def _load_jsonl(self, text: str) -> tuple[list[dict], bool]:
        records, dirty = [], False
        for raw in text.split("\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or not isinstance(record.get("line"), int):
                    raise ValueError
                records.append(record)
            except ValueError:
                dirty = True
        return records, dirty

    def _load_csv(self, text: str) -> tuple[list[dict], bool]:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = next(reader)
        except (StopIteration, csv.Error):
            return [], True
        if header != self.columns:
            raise InputError(f"refusing to resume: the columns of {self.path} are not the ones this input "
                             f"produces; delete it and {meta_path(self.path).name}, or choose another --out")
        records, dirty = [], False
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error:
                dirty = True  # a torn quoted field runs to the end of the file
                break
            try:
                records.append(_from_cells(dict(zip(header, fields)), len(fields) == len(header)))
            except ValueError:
                dirty = True
        return records, dirty

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(self.encode(record))
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self, records: list[dict]) -> None:
        """Replace the file atomically with exactly these records."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(self.header() + "".join(self.encode(r) for r in records))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _from_cells(cells: dict[str, str], complete: bool) -> dict:
    """A CSV output record back as typed values; ValueError if it is incomplete or torn."""
    if not complete:
        raise ValueError("wrong number of fields")
    record: dict[str, Any] = {k: (v if v != "" else None) for k, v in cells.items()}
    record["line"] = int(cells["line"])
    record["score"] = float(cells["score"]) if cells["score"] else None
    record["result"] = json.loads(cells["result"]) if cells["result"] else None
    if record["status"] not in ("graded", "error") or (record["status"] == "graded") != bool(record["result"]):
        raise ValueError("inconsistent record")
    return record


def meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".meta.json")


def default_out(input_path: Path) -> Path:
    """`answers.csv` -> `answers.results.jsonl` beside it."""
    return input_path.with_name(input_path.stem + ".results.jsonl")


# -- a whole file -------------------------------------------------------------------------

class BatchJob:
    """Grade an answers file into a results file, resuming what an earlier run left.

    >>> job = BatchJob(engine, Path("answers.jsonl"), Path("answers.results.jsonl"))
    >>> for record in job.run(): ...      # each record is on disk when it is yielded
    >>> records = job.finish()            # every record, in input order
    """

    def __init__(self, engine, input_path: Path, out: Path | None = None, *, fmt: str | None = None,
                 doc: Path | str | None = None, use_judge: bool = True):
        self.engine, self.doc, self.use_judge = engine, doc, use_judge
        self.input_path = Path(input_path)
        self.out = Path(out) if out else default_out(self.input_path)
        data = self.input_path.read_bytes()
        self.rows = list(read_rows(data, fmt or detect_format(self.input_path)))
        document = engine.document(doc)
        rubric_file = engine.rubric(doc).path
        self.meta = {
            "version": META_VERSION,
            "input": str(self.input_path.resolve()),
            "input_sha256": hashlib.sha256(data).hexdigest(),
            "document": str(document.path),
            "document_sha256": document.sha256,
            "rubric_sha256": hashlib.sha256(rubric_file.read_bytes()).hexdigest() if rubric_file else None,
            "profile": engine.profile_name,
            "calibration": engine.calibration.id,
            "use_judge": use_judge,
        }
        extras = list(dict.fromkeys(k for row in self.rows for k in row.extra))
        if self.out.resolve() == self.input_path.resolve():
            raise InputError("the output must be another file than the input")
        if self.out.suffix.lower() not in (".jsonl", ".csv"):
            raise InputError(f"the output {self.out.name!r} must end in .jsonl or .csv")
        self.output = _Output(self.out, self.out.suffix.lower()[1:], [*BASE, *extras, "result"])
        self.done = self._resume()
        done_lines = {r["line"] for r in self.done}
        self.pending = deque(by_question(row for row in self.rows if row.line not in done_lines))

    def _resume(self) -> list[dict]:
        meta_file = meta_path(self.out)
        exists = self.out.exists() and self.out.stat().st_size > 0
        if exists and not meta_file.exists():
            raise InputError(f"{self.out} exists and was not written by `interviewer grade` (no "
                             f"{meta_file.name}); delete it or choose another --out")
        if exists:
            old = json.loads(meta_file.read_text(encoding="utf-8"))
            changed = [k for k in self.meta if k != "input" and old.get(k) != self.meta[k]]
            if changed:
                raise InputError(f"refusing to resume: {self.out} was written for a different "
                                 f"{', '.join(changed)}; delete {self.out} and {meta_file.name}, "
                                 "or choose another --out")
            records, dirty = self.output.load()
            known = {row.line for row in self.rows}
            records = [r for r in records if r["line"] in known]
            if dirty:
                self.output.rewrite(records)
            return records
        _write_atomic(meta_file, json.dumps(self.meta, indent=2) + "\n")
        self.output.rewrite([])
        return []

    def run(self, should_stop: Callable[[], bool] | None = None) -> Iterator[dict]:
        """Grade the pending rows, appending each record before yielding it."""
        prefetched = 0
        while self.pending:
            if should_stop and should_stop():
                return
            if prefetched == 0:  # embed the next rows' sentences in one batch: far faster than one by one
                ahead = list(itertools.islice(self.pending, PREFETCH))
                self.engine.prefetch([row.answer for row in ahead if isinstance(row, Row)])
                prefetched = len(ahead)
            prefetched -= 1
            record = grade_row(self.engine, self.pending[0], self.doc, self.use_judge)
            self.output.append(record)
            self.done.append(record)
            self.pending.popleft()
            yield record

    def finish(self) -> list[dict]:
        """Every record, in input order (the file is rewritten in that order once complete)."""
        ordered = sorted(self.done, key=lambda r: r["line"])
        if not self.pending and [r["line"] for r in ordered] != [r["line"] for r in self.done]:
            self.output.rewrite(ordered)
            self.done = ordered
        return ordered


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_records(path: Path) -> list[dict]:
    """The records of a results file written by `BatchJob` (JSONL or CSV)."""
    fmt = detect_format(path)
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), [])
        return _Output(path, fmt, header).load()[0]
    return _Output(path, fmt, []).load()[0]


# -- report -------------------------------------------------------------------------------

def report(records: list[dict], *, title: str = "Batch grading report") -> str:
    """A readable Markdown summary: counts, per question and per candidate averages, the
    score distribution, the most-missed key points and the rows that could not be graded."""
    graded = [r for r in records if r["status"] == "graded"]
    errors = [r for r in records if r["status"] != "graded"]
    scores = [r["score"] for r in graded]
    out = [f"# {title}", ""]
    out.append(f"{len(records)} rows: {len(graded)} graded, {len(errors)} errors"
               + (f"; mean score {_mean(scores):.1f}/10" if scores else "")
               + f"; {sum(1 for r in graded if r['result'].get('needs_review'))} flagged for review.")
    if graded:
        p = graded[0]["result"]["provenance"]
        judge = (p.get("judge") or {}).get("id", "none")
        out.append(f"Document {p['document']} · embedder {p['embedder']['id']} · judge {judge}.")
    out.append("")

    questions: dict[str, list] = defaultdict(list)
    titles: dict[str, str] = {}
    for r in graded:
        qid = r["result"]["question_id"]
        questions[qid].append(r["score"])
        titles[qid] = r["result"]["question"]
    if questions:
        out += ["## Per question", "", "| question | answers | mean | min | max |", "|---|---:|---:|---:|---:|"]
        for qid in sorted(questions, key=_natural):
            s = questions[qid]
            out.append(f"| {qid}: {_md(_short(titles[qid], 70))} | {len(s)} | {_mean(s):.1f} | {min(s):.1f} | "
                       f"{max(s):.1f} |")
        out.append("")

    candidates: dict[str, list] = defaultdict(list)
    for r in graded:
        if r.get("candidate"):
            candidates[r["candidate"]].append(r["score"])
    if candidates:
        out += ["## Per candidate", "", "| candidate | answers | mean | min | max |", "|---|---:|---:|---:|---:|"]
        for name in sorted(candidates, key=lambda c: (-_mean(candidates[c]), c)):
            s = candidates[name]
            out.append(f"| {_md(name)} | {len(s)} | {_mean(s):.1f} | {min(s):.1f} | {max(s):.1f} |")
        out.append("")

    if scores:
        buckets = Counter(min(int(s), 9) for s in scores)
        out += ["## Score distribution", "", "| score | answers | |", "|---|---:|---|"]
        for b in range(10):
            out.append(f"| {b}–{b + 1} | {buckets[b]} | {'█' * round(40 * buckets[b] / len(scores))} |")
        out.append("")

    missed: Counter = Counter()
    partial: Counter = Counter()
    asked: Counter = Counter()
    points: dict[tuple, dict] = {}
    for r in graded:
        if r["result"].get("gate"):
            continue  # a gated answer misses everything; it says nothing about single points
        qid = r["result"]["question_id"]
        for kp in r["result"]["key_points"]:
            key = (qid, kp["id"])
            points[key] = kp
            asked[key] += 1
            missed[key] += kp["status"] == "missed"
            partial[key] += kp["status"] == "partial"
    ranked = sorted((k for k in points if missed[k] + partial[k]),
                    key=lambda k: (-(missed[k] + 0.5 * partial[k]) / asked[k], -asked[k], _natural(k[0]), k[1]))
    if ranked:
        out += ["## Most-missed key points", "",
                "| question | key point | missed | partial | of | study |", "|---|---|---:|---:|---:|---|"]
        for key in ranked[:10]:
            kp = points[key]
            out.append(f"| {key[0]} | {_md(kp['text'])} | {missed[key]} | {partial[key]} | {asked[key]} | "
                       f"{_md(kp['citation']['location'])} |")
        out.append("")

    if errors:
        out += ["## Rows not graded", ""]
        out += [f"- `{_md(str(r.get('id') or '—'))}` {_md(r['error'] or '')}" for r in errors[:50]]
        if len(errors) > 50:
            out.append(f"- … and {len(errors) - 50} more (see the results file)")
        out.append("")
    return "\n".join(out)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _natural(qid: str) -> tuple:
    digits = "".join(ch for ch in qid if ch.isdigit())
    return (int(digits) if digits else 0, qid)


# -- terminal progress --------------------------------------------------------------------

class Progress:
    """Progress to stderr: a rich bar with rate and ETA on a terminal, plain lines elsewhere."""

    def __init__(self, total: int, *, live: bool | None = None, every_s: float = 10.0):
        self.total, self.count, self.started = total, 0, time.monotonic()
        self.every_s, self._last = every_s, 0.0
        self.live = sys.stderr.isatty() if live is None else live
        self._bar = None
        if self.live and total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = Bar(TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task("grading", total=total, rate="")

    def __enter__(self) -> "Progress":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def advance(self) -> None:
        self.count += 1
        rate = self.rate
        if self._bar:
            self._bar.update(self._task, advance=1, rate=f"{rate:.1f} rows/s")
            return
        now = time.monotonic()
        if now - self._last >= self.every_s or self.count == self.total:
            self._last = now
            eta = (self.total - self.count) / rate if rate else 0
            print(f"graded {self.count}/{self.total} rows ({rate:.1f} rows/s, ETA {_duration(eta)})",
                  file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
