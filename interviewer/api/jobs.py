"""Batch grading jobs: an uploaded JSONL or CSV of recorded answers, graded in the background.

Parsing and row grading are `interviewer.batch`'s (the CLI's batch command), so a row means the
same thing in both and the output records are identical. The rows live in the database: a job
survives a restart and resumes with the rows not yet graded. One job runs at a time; each row
goes through the grading pool like any request, so a large batch never starves the API.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from pathlib import Path

from .. import batch
from ..errors import InputError, InterviewerError, ModelUnavailable
from ..service import Engine
from ..sessions import storable
from ..store import JobRecord, Store
from .errors import NotFound
from .pool import GradingPool

log = logging.getLogger("interviewer.api")
MAX_ROWS = 10_000


def parse(data: bytes, filename: str, fmt: str | None = None) -> list[batch.Row | batch.RowError]:
    """The upload's rows; InputError when the file as a whole cannot be used."""
    rows = list(batch.read_rows(data, fmt or batch.detect_format(filename)))
    if not rows:
        raise InputError(f"{filename} has no rows")
    if len(rows) > MAX_ROWS:
        raise InputError(f"{filename} has {len(rows)} rows; at most {MAX_ROWS} per job")
    return rows


def _encode(row: batch.Row | batch.RowError) -> dict:
    return _storable({"kind": "row" if isinstance(row, batch.Row) else "error", **dataclasses.asdict(row)})


def _decode(data: dict) -> batch.Row | batch.RowError:
    fields = {k: v for k, v in data.items() if k != "kind"}
    return batch.Row(**fields) if data["kind"] == "row" else batch.RowError(**fields)


def _storable(value):
    """Every string in a parsed row made storable (and encodable as UTF-8 JSON in responses)."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


class BatchJobs:
    """Creates jobs and runs them, oldest first, on one background thread."""

    def __init__(self, engine: Engine, store: Store, pool: GradingPool):
        self.engine, self.store, self.pool = engine, store, pool
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def create(self, data: bytes, filename: str, document: Path, *, fmt: str | None = None,
               use_judge: bool = True) -> JobRecord:
        if use_judge:  # without the judge its rows would be stored as final grades from the embedding alone
            try:
                self.engine.require_judge(load=False)  # a request does not wait for a load
            except ModelUnavailable as exc:
                raise ModelUnavailable(f"{exc}; send use_judge=false to grade on the embedding signal only") from exc
        filename = storable(Path(filename).name)[:200] or "upload"
        rows = parse(data, filename, fmt)
        job = JobRecord(id=secrets.token_urlsafe(12), document_path=str(document), filename=filename,
                        use_judge=use_judge, total=len(rows))
        self.store.add_job(job, [_encode(r) for r in rows])
        self._wake.set()
        return job

    def get(self, job_id: str) -> JobRecord:
        job = self.store.job(job_id)
        if job is None:
            raise NotFound(f"no batch job {job_id!r}")
        return job

    def results(self, job_id: str, *, offset: int = 0, limit: int = 100) -> tuple[JobRecord, list[dict]]:
        """The job and its finished output records, in input order."""
        job = self.get(job_id)
        rows = self.store.job_rows(job_id, offset=offset, limit=limit)
        return job, [r.output for r in rows if r.output is not None]

    # -- the runner ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="batch-jobs", daemon=True)
        self._thread.start()
        self._wake.set()  # resume jobs left unfinished by a previous run

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            for job in self.store.unfinished_jobs():
                if self._stop.is_set():
                    return
                try:
                    self.run(job)
                except Exception:  # a broken model or database: keep the job, retry on next wake
                    log.exception("batch job %s stopped", job.id)

    def run(self, job: JobRecord) -> None:
        """Grade the job's pending rows (grouped by question) until done or stopped."""
        self.store.set_job_state(job.id, "running")
        pending = {r.n: _decode(r.input) for r in self.store.job_rows(job.id, pending=True)}
        numbers = {row.line: n for n, row in pending.items()}  # a row's input line is unique
        for row in batch.by_question(pending.values()):
            record = None if self._stop.is_set() else self.pool.call(self._grade, row, job, stop=self._stop)
            if record is None:  # stopping: the rest stays pending for the next start
                return
            self.store.save_row(job.id, numbers[row.line], record["status"], record)
        self.store.set_job_state(job.id, "done")

    def _grade(self, row, job: JobRecord) -> dict:
        try:
            return batch.grade_row(self.engine, row, job.document_path, job.use_judge)
        except Exception as exc:  # the document or the models failed on this row: record it
            if not isinstance(exc, InterviewerError):
                log.exception("batch job %s, line %s", job.id, row.line)
                exc = "unexpected error while grading; it has been logged"
            error = batch.RowError(row.line, f"line {row.line}: {exc}", id=row.id, question=row.question,
                                   candidate=row.candidate, extra=row.extra)
            return batch.grade_row(self.engine, error)
