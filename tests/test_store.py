"""The database: migrations on a fresh and an existing database, data surviving a reopen,
atomic session moves, concurrent writers."""

import sqlite3
import threading

import pytest
import sqlalchemy as sa

from interviewer import store as store_module
from interviewer.store import AttemptRecord, Conflict, JobRecord, SessionRecord, Store, StoreError


def session_record(**kw) -> SessionRecord:
    values = dict(id="s1", token_sha256="h" * 64, candidate="ada", document_path="/docs/seed.md",
                  document_sha256="d" * 64, question_ids=["Q1", "Q2"], question_order="document")
    return SessionRecord(**{**values, **kw})


def attempt_record(n: int = 0, **kw) -> AttemptRecord:
    values = dict(id=f"a{n}", session_id=None, position=None, candidate="ada", document="seed.md",
                  document_sha256="d" * 64, question_id="Q1", answer=f"answer {n}", status="answered", score=5.0)
    return AttemptRecord(**{**values, **kw})


def test_fresh_database_is_created_with_its_folder_and_every_migration(tmp_path):
    path = tmp_path / "deep" / "er" / "interviewer.db"
    store = Store(f"sqlite:///{path}")
    assert path.exists()
    assert store.version == len(store_module.MIGRATIONS)
    assert store.applied_migrations() == [(n, name) for n, (name, _) in enumerate(store_module.MIGRATIONS, 1)]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_the_query_tables_match_what_the_migrations_create(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    inspector = sa.inspect(store._engine)
    for table in store_module._meta.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.c.keys()), table.name


def test_an_existing_database_gets_only_the_new_migrations_and_keeps_its_data(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    old = Store(url)  # "the previous release"
    old.add_session(session_record())
    old.close()
    added = ("attempt notes", ["CREATE TABLE notes (attempt_id TEXT REFERENCES attempts (id), text TEXT)"])
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, added])
    new = Store(url)
    assert new.version == len(store_module.MIGRATIONS)
    assert new.applied_migrations()[-1] == (len(store_module.MIGRATIONS), "attempt notes")
    assert new.session("s1") == session_record(created_at=new.session("s1").created_at,
                                               updated_at=new.session("s1").updated_at)
    Store(url)  # opening again applies nothing
    assert len(Store(url).applied_migrations()) == len(store_module.MIGRATIONS)


def test_a_database_newer_than_the_code_is_refused(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:0])
    with pytest.raises(StoreError, match="newer than this interviewer knows"):
        Store(url)


def test_bad_urls_are_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="not a SQLAlchemy URL"):
        Store("not a url")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(f"sqlite:///{tmp_path / 'file' / 'x.db'}")


def test_everything_survives_reopening(tmp_path, fake_engine):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = fake_engine.grade("Q1", "Each token is projected into a query, a key and a value vector.")
    store = Store(url)
    s = session_record()
    store.add_session(s)
    store.advance(s, attempt_record(1, session_id="s1", position=0, score=result.score, result=result))
    store.add_attempt(attempt_record(2, candidate="bob", result=None, status="skipped", score=None))
    store.add_job(JobRecord(id="j1", document_path="/docs/seed.md", filename="a.jsonl", use_judge=True, total=2),
                  [{"kind": "row", "n": 0}, {"kind": "row", "n": 1}])
    store.save_row("j1", 0, "graded", {"id": "x", "score": 1.0})
    store.close()

    again = Store(url)
    assert again.session("s1").position == 1 and again.session("s1").state == "open"
    [attempt] = again.attempts(session_id="s1")
    assert attempt.result == result  # the full GradeResult, provenance included
    assert attempt.result.provenance.embedder.id == "hashing-embedder"
    assert [a.id for a in again.attempts(candidate="bob")] == ["a2"]
    job = again.job("j1")
    assert (job.total, job.done, job.errors, job.use_judge) == (2, 1, 0, True)
    assert [r.status for r in again.job_rows("j1")] == ["graded", "pending"]
    assert [r.n for r in again.job_rows("j1", pending=True)] == [1]
    assert [j.id for j in again.unfinished_jobs()] == ["j1"]


def test_advance_is_atomic_and_refuses_a_stale_session(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    s = session_record()
    store.add_session(s)
    store.advance(s, attempt_record(1, session_id="s1", position=0))
    with pytest.raises(Conflict):
        store.advance(s, attempt_record(2, session_id="s1", position=0))  # the same question again
    assert [a.id for a in store.attempts(session_id="s1")] == ["a1"]
    moved = store.session("s1")
    store.advance(moved, attempt_record(3, session_id="s1", position=1))
    assert store.session("s1").state == "finished" and store.session("s1").current_question_id is None
    with pytest.raises(Conflict):
        store.advance(store.session("s1"), attempt_record(4, session_id="s1", position=2))


def test_foreign_keys_and_unique_positions_are_enforced(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(sa.exc.IntegrityError):
        store.add_attempt(attempt_record(1, session_id="missing", position=0))
    store.add_session(session_record())
    store.add_attempt(attempt_record(2, session_id="s1", position=0))
    with pytest.raises(sa.exc.IntegrityError):
        store.add_attempt(attempt_record(3, session_id="s1", position=0))


def test_concurrent_writers_all_land(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    failures = []

    def write(t: int):
        try:
            for i in range(15):
                store.add_attempt(attempt_record(t * 100 + i))
                store.attempts(candidate="ada", limit=5)
        except Exception as exc:  # noqa: BLE001 - any failure fails the test
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert store.count_attempts(candidate="ada") == 8 * 15


def test_in_memory_sqlite_works():
    store = Store("sqlite://")
    store.add_session(session_record())
    assert store.session("s1").question_ids == ["Q1", "Q2"]
