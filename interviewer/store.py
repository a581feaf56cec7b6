"""Persistence: interview sessions, graded attempts and batch jobs, over any SQLAlchemy URL.

SQLite in the data directory by default (WAL, foreign keys on, writers queue on a busy timeout),
PostgreSQL for a multi-instance deployment. The schema is a numbered list of migrations
(`MIGRATIONS`), applied in order when a `Store` opens and recorded in `schema_migrations`;
a release only ever appends to the list. Every write is one transaction.

The store holds data, not rules: what may happen to a session is decided in `sessions.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from .config import Settings
from .errors import InterviewerError
from .schema import GradeResult

BUSY_TIMEOUT_MS = 10_000


class StoreError(InterviewerError):
    """The database cannot be opened or is newer than this version of interviewer."""


class Conflict(InterviewerError):
    """A write lost a race: the row it expected changed in between (the caller re-reads)."""


def now() -> str:
    """UTC timestamp as fixed-width ISO text: sorts correctly as text on every database."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- migrations --------------------------------------------------------------------------------
# Portable SQL (SQLite and PostgreSQL): text ids, ISO timestamps as text, JSON as text.
# Append new migrations; never edit a released one. A step is SQL text or a function(conn).

Step = str | Callable[[Connection], None]

MIGRATIONS: list[tuple[str, Sequence[Step]]] = [
    ("initial schema", [
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            token_sha256 TEXT NOT NULL,
            candidate TEXT,
            document_path TEXT NOT NULL,
            document_sha256 TEXT NOT NULL,
            question_ids TEXT NOT NULL,
            question_order TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'finished')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE attempts (
            id TEXT PRIMARY KEY,
            session_id TEXT REFERENCES sessions (id) ON DELETE CASCADE,
            position INTEGER,
            candidate TEXT,
            document TEXT NOT NULL,
            document_sha256 TEXT NOT NULL,
            question_id TEXT NOT NULL,
            answer TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('answered', 'skipped')),
            score DOUBLE PRECISION,
            result_json TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (session_id, position)
        )""",
        "CREATE INDEX attempts_by_candidate ON attempts (candidate, created_at)",
        """CREATE TABLE batch_jobs (
            id TEXT PRIMARY KEY,
            document_path TEXT NOT NULL,
            filename TEXT NOT NULL,
            use_judge INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
            total INTEGER NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE batch_rows (
            job_id TEXT NOT NULL REFERENCES batch_jobs (id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            input_json TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'graded', 'error')),
            output_json TEXT,
            PRIMARY KEY (job_id, n)
        )""",
    ]),
]

# The current schema, for building queries (the migrations above create it; a test checks both agree).
_meta = sa.MetaData()
sessions_t = sa.Table(
    "sessions", _meta,
    sa.Column("id", sa.Text, primary_key=True), sa.Column("token_sha256", sa.Text), sa.Column("candidate", sa.Text),
    sa.Column("document_path", sa.Text), sa.Column("document_sha256", sa.Text), sa.Column("question_ids", sa.Text),
    sa.Column("question_order", sa.Text), sa.Column("position", sa.Integer), sa.Column("state", sa.Text),
    sa.Column("created_at", sa.Text), sa.Column("updated_at", sa.Text),
)
attempts_t = sa.Table(
    "attempts", _meta,
    sa.Column("id", sa.Text, primary_key=True), sa.Column("session_id", sa.Text), sa.Column("position", sa.Integer),
    sa.Column("candidate", sa.Text), sa.Column("document", sa.Text), sa.Column("document_sha256", sa.Text),
    sa.Column("question_id", sa.Text), sa.Column("answer", sa.Text), sa.Column("status", sa.Text),
    sa.Column("score", sa.Float), sa.Column("result_json", sa.Text), sa.Column("created_at", sa.Text),
)
jobs_t = sa.Table(
    "batch_jobs", _meta,
    sa.Column("id", sa.Text, primary_key=True), sa.Column("document_path", sa.Text), sa.Column("filename", sa.Text),
    sa.Column("use_judge", sa.Integer), sa.Column("state", sa.Text), sa.Column("total", sa.Integer),
    sa.Column("done", sa.Integer), sa.Column("errors", sa.Integer), sa.Column("created_at", sa.Text),
    sa.Column("updated_at", sa.Text),
)
rows_t = sa.Table(
    "batch_rows", _meta,
    sa.Column("job_id", sa.Text, primary_key=True), sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("input_json", sa.Text), sa.Column("status", sa.Text), sa.Column("output_json", sa.Text),
)
migrations_t = sa.Table(
    "schema_migrations", _meta,
    sa.Column("version", sa.Integer, primary_key=True), sa.Column("name", sa.Text), sa.Column("applied_at", sa.Text),
)


# -- records -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionRecord:
    id: str
    token_sha256: str
    candidate: str | None
    document_path: str
    document_sha256: str
    question_ids: list[str]
    question_order: str  # document | random | weakest
    position: int = 0  # index of the next question to ask
    state: str = "open"  # open | finished
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)

    @property
    def total(self) -> int:
        return len(self.question_ids)

    @property
    def current_question_id(self) -> str | None:
        """The question waiting for an answer, or None once the session is finished."""
        if self.state != "open" or self.position >= self.total:
            return None
        return self.question_ids[self.position]


@dataclass(frozen=True)
class AttemptRecord:
    id: str
    session_id: str | None  # None for stateless grading
    position: int | None  # the question's index in its session
    candidate: str | None
    document: str  # file name, as in the result's provenance
    document_sha256: str
    question_id: str
    answer: str
    status: str  # answered | skipped
    score: float | None = None
    result: GradeResult | None = None
    created_at: str = field(default_factory=now)


@dataclass(frozen=True)
class JobRecord:
    id: str
    document_path: str
    filename: str
    use_judge: bool
    state: str = "queued"  # queued | running | done
    total: int = 0
    done: int = 0
    errors: int = 0
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)


@dataclass(frozen=True)
class JobRow:
    job_id: str
    n: int  # 0-based position in the upload
    input: dict
    status: str = "pending"  # pending | graded | error
    output: dict | None = None


# -- the store ---------------------------------------------------------------------------------
class Store:
    """Thread-safe access to the database; one instance per process."""

    def __init__(self, url: str):
        self.url = url
        self._engine = _create_engine(url)
        self._writer = self._engine.execution_options(write=True)
        try:
            self.version = self._migrate()
        except sa.exc.SQLAlchemyError as exc:
            self._engine.dispose()
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"cannot open the database {_safe(url)}: {reason.__class__.__name__}: {reason}") from exc

    @classmethod
    def for_settings(cls, settings: Settings) -> "Store":
        return cls(settings.database)

    def close(self) -> None:
        self._engine.dispose()

    # -- migrations ------------------------------------------------------------------------
    def _migrate(self) -> int:
        with self._writer.begin() as conn:
            migrations_t.create(conn, checkfirst=True)
        with self._writer.begin() as conn:
            version = conn.scalar(sa.select(sa.func.max(migrations_t.c.version))) or 0
        if version > len(MIGRATIONS):
            raise StoreError(f"the database {_safe(self.url)} has schema version {version}, newer than this "
                             f"interviewer knows ({len(MIGRATIONS)}); upgrade interviewer")
        for number, (name, steps) in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._writer.begin() as conn:  # one transaction per migration, with its record
                for step in steps:
                    if isinstance(step, str):
                        conn.exec_driver_sql(step)
                    else:
                        step(conn)
                conn.execute(migrations_t.insert().values(version=number, name=name, applied_at=now()))
        return len(MIGRATIONS)

    def applied_migrations(self) -> list[tuple[int, str]]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(migrations_t.c.version, migrations_t.c.name).order_by("version"))
            return [tuple(r) for r in rows]

    # -- sessions --------------------------------------------------------------------------
    def add_session(self, s: SessionRecord) -> None:
        with self._writer.begin() as conn:
            conn.execute(sessions_t.insert().values(**{**s.__dict__, "question_ids": json.dumps(s.question_ids)}))

    def session(self, session_id: str) -> SessionRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(sessions_t).where(sessions_t.c.id == session_id)).mappings().first()
        return None if row is None else SessionRecord(**{**row, "question_ids": json.loads(row["question_ids"])})

    def advance(self, session: SessionRecord, attempt: AttemptRecord) -> None:
        """Store `attempt` for the session's current question and move the session on, atomically.

        Raises `Conflict` (and stores nothing) if the session moved or finished since `session`
        was read, so two submissions for the same question never both count.
        """
        position = session.position + 1
        state = "finished" if position >= session.total else "open"
        with self._writer.begin() as conn:
            moved = conn.execute(
                sessions_t.update()
                .where(sessions_t.c.id == session.id, sessions_t.c.position == session.position,
                       sessions_t.c.state == "open")
                .values(position=position, state=state, updated_at=now())
            )
            if moved.rowcount != 1:
                raise Conflict(f"session {session.id} is no longer at question {session.position + 1}")
            conn.execute(attempts_t.insert().values(**_attempt_row(attempt)))

    def finish(self, session_id: str) -> None:
        with self._writer.begin() as conn:
            conn.execute(sessions_t.update().where(sessions_t.c.id == session_id, sessions_t.c.state == "open")
                         .values(state="finished", updated_at=now()))

    # -- attempts --------------------------------------------------------------------------
    def add_attempt(self, attempt: AttemptRecord) -> None:
        with self._writer.begin() as conn:
            conn.execute(attempts_t.insert().values(**_attempt_row(attempt)))

    def attempts(self, *, session_id: str | None = None, candidate: str | None = None,
                 limit: int | None = None, offset: int = 0, newest_first: bool = False) -> list[AttemptRecord]:
        query = sa.select(attempts_t)
        if session_id is not None:
            query = query.where(attempts_t.c.session_id == session_id)
        if candidate is not None:
            query = query.where(attempts_t.c.candidate == candidate)
        order = (attempts_t.c.created_at.desc(), attempts_t.c.id.desc()) if newest_first else (
            attempts_t.c.created_at, attempts_t.c.id)
        query = query.order_by(*order).offset(offset).limit(limit)
        with self._engine.connect() as conn:
            return [_attempt(r) for r in conn.execute(query).mappings()]

    def count_attempts(self, *, candidate: str) -> int:
        with self._engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(attempts_t)
                               .where(attempts_t.c.candidate == candidate))

    # -- batch jobs ------------------------------------------------------------------------
    def add_job(self, job: JobRecord, inputs: list[dict]) -> None:
        with self._writer.begin() as conn:
            conn.execute(jobs_t.insert().values(**{**job.__dict__, "use_judge": int(job.use_judge)}))
            if inputs:
                conn.execute(rows_t.insert(), [
                    {"job_id": job.id, "n": n, "input_json": json.dumps(row), "status": "pending"}
                    for n, row in enumerate(inputs)
                ])

    def job(self, job_id: str) -> JobRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(jobs_t).where(jobs_t.c.id == job_id)).mappings().first()
        return None if row is None else JobRecord(**{**row, "use_judge": bool(row["use_judge"])})

    def unfinished_jobs(self) -> list[JobRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(jobs_t.c.id).where(jobs_t.c.state != "done").order_by(jobs_t.c.created_at))
            ids = [r.id for r in rows]
        return [self.job(i) for i in ids]

    def job_rows(self, job_id: str, *, pending: bool = False, offset: int = 0,
                 limit: int | None = None) -> list[JobRow]:
        query = sa.select(rows_t).where(rows_t.c.job_id == job_id)
        if pending:
            query = query.where(rows_t.c.status == "pending")
        query = query.order_by(rows_t.c.n).offset(offset).limit(limit)
        with self._engine.connect() as conn:
            return [JobRow(r["job_id"], r["n"], json.loads(r["input_json"]), r["status"],
                           json.loads(r["output_json"]) if r["output_json"] else None)
                    for r in conn.execute(query).mappings()]

    def set_job_state(self, job_id: str, state: str) -> None:
        with self._writer.begin() as conn:
            conn.execute(jobs_t.update().where(jobs_t.c.id == job_id).values(state=state, updated_at=now()))

    def save_row(self, job_id: str, n: int, status: str, output: dict) -> None:
        """Record a graded (or failed) row and count it in the job's progress, atomically."""
        with self._writer.begin() as conn:
            saved = conn.execute(rows_t.update().where(rows_t.c.job_id == job_id, rows_t.c.n == n,
                                                       rows_t.c.status == "pending")
                                 .values(status=status, output_json=json.dumps(output)))
            if saved.rowcount == 1:
                conn.execute(jobs_t.update().where(jobs_t.c.id == job_id).values(
                    done=jobs_t.c.done + 1, errors=jobs_t.c.errors + int(status == "error"), updated_at=now()))


def _attempt_row(a: AttemptRecord) -> dict:
    row = {k: v for k, v in a.__dict__.items() if k != "result"}
    row["result_json"] = a.result.model_dump_json() if a.result is not None else None
    return row


def _attempt(row) -> AttemptRecord:
    values = {k: v for k, v in row.items() if k != "result_json"}
    result = GradeResult.model_validate_json(row["result_json"]) if row["result_json"] else None
    return AttemptRecord(**values, result=result)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def _create_engine(url: str) -> sa.Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"INTERVIEWER_DATABASE_URL is not a SQLAlchemy URL: {exc}") from None
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:")
    if not memory:
        folder = Path(parsed.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot open the database {_safe(url)}: cannot create {folder}: {exc.strerror}") \
                from None
    kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}} if memory else {}
    engine = sa.create_engine(parsed, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # transactions are begun below, not by the sqlite3 module
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A writer takes the write lock up front (waiting up to busy_timeout) instead of failing
        # with "database is locked" when it upgrades a read lock; readers never block in WAL mode.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine
