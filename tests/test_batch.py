"""Batch grading: parsing every kind of bad row, output files, resume after a crash, report."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interviewer import batch
from interviewer.errors import InputError

from .conftest import ADVERSARIAL

BIN = Path(sys.executable).parent / "interviewer"
STRONG = {qid: " ".join(q["strong"].split()) for qid, q in ADVERSARIAL["questions"].items()}


def jsonl(path: Path, lines: list) -> Path:
    with open(path, "wb") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else json.dumps(line).encode())
            f.write(b"\n")
    return path


GOOD_AND_BAD = [
    {"id": "a1", "question": "Q1", "answer": STRONG["Q1"], "candidate": "ann", "team": "red"},   # 1
    {"id": "a2", "question": "Q77", "answer": "Attention weighs tokens."},                       # 2 unknown question
    {"id": "a3", "question": "Q2", "answer": "   "},                                             # 3 empty
    {"question": "Q2", "answer": STRONG["Q2"]},                                                  # 4 missing id
    {"id": "a1", "question": "Q2", "answer": STRONG["Q2"]},                                      # 5 duplicate id
    b'{"id": "a6", "question": "Q2", "answer": "broken',                                         # 6 malformed JSON
    b'{"id": "a7", "question": "Q2", "answer": "caf\xe9"}',                                      # 7 not UTF-8
    b"",                                                                                         # 8 blank: skipped
    [1, 2],                                                                                      # 9 not an object
    {"id": 10, "question": 3, "answer": STRONG["Q3"], "candidate": "bob"},                       # 10 numbers are ok
    {"id": "a11", "answer": "no question"},                                                      # 11 missing question
    {"id": "a12", "question": "Q4", "answer": 42},                                               # 12 answer not text
]
EXPECTED = {
    1: ("graded", None), 2: ("error", "line 2: transformers_llms.md has no question 'Q77'"),
    3: ("error", "line 3: empty answer"), 4: ("error", "line 4: missing id"),
    5: ("error", "line 5: duplicate id 'a1' (first used at line 1)"),
    6: ("error", "line 6: malformed JSON: Unterminated string"),
    7: ("error", "line 7: not valid UTF-8 (byte 0xe9"), 9: ("error", "line 9: expected a JSON object, got list"),
    10: ("graded", None), 11: ("error", "line 11: missing question"),
    12: ("error", "line 12: the answer must be text, got int"),
}


def check_statuses(records):
    assert [r["line"] for r in records] == sorted(EXPECTED)
    for r in records:
        status, message = EXPECTED[r["line"]]
        assert r["status"] == status, r
        if message:
            assert r["error"].startswith(message), r["error"]
            assert r["score"] is None and r["result"] is None
        else:
            assert r["error"] is None and 0 <= r["score"] <= 10 and r["result"]["score"] == r["score"]


def test_good_rows_are_graded_and_every_bad_row_is_an_error_naming_its_line(fake_engine, tmp_path):
    src = jsonl(tmp_path / "answers.jsonl", GOOD_AND_BAD)
    job = batch.BatchJob(fake_engine, src, use_judge=True)
    assert list(job.run()) and not job.pending
    records = job.finish()
    check_statuses(records)
    assert job.out == tmp_path / "answers.results.jsonl"
    first = records[0]
    assert list(first)[:7] == list(batch.BASE) and list(first)[-1] == "result"
    assert first["candidate"] == "ann" and first["team"] == "red" and first["id"] == "a1"
    assert records[-3]["id"] == "10" and records[-3]["result"]["question_id"] == "Q3"
    # on disk: one line per input row, in input order once complete
    assert [r["line"] for r in batch.load_records(job.out)] == sorted(EXPECTED)


def test_rows_are_grouped_by_question_for_the_judge_cache():
    rows = [batch.Row(i, str(i), q, "x") for i, q in enumerate(["Q1", "Q2", "q1", "Q3", "Q2"], start=1)]
    assert [r.line for r in batch.by_question(rows)] == [1, 3, 2, 5, 4]


def test_csv_in_and_out(fake_engine, tmp_path):
    src = tmp_path / "answers.csv"
    src.write_bytes(
        b"id,question,answer,candidate,cohort\r\n"
        b"c1,Q1,\"" + STRONG["Q1"].replace('"', '""').encode() + b"\",ann,2024\r\n"
        b"c2,Q4,\"Sine and cosine encodings,\nacross two lines, add word order.\",bob,2024\r\n"
        b"c3,Q2,\"quoted\"junk,ann,2024\r\n"
        b"c4,Q2,too,few\r\n"
        b"c5,Q3,\"caf\xe9\",bob,2024\r\n"
        b"\r\n"
        b"c6,Q5,\"" + STRONG["Q5"].encode() + b"\",,2025\r\n"
    )
    rows = list(batch.read_rows(src))
    assert [(type(r).__name__, r.line) for r in rows] == [
        ("Row", 2), ("Row", 3), ("RowError", 5), ("RowError", 6), ("RowError", 7), ("Row", 9)]
    assert rows[1].answer == "Sine and cosine encodings,\nacross two lines, add word order."
    assert rows[2].message.startswith("line 5: malformed CSV record")
    assert rows[3].message == "line 6: malformed CSV record (4 fields, the header has 5)"
    assert rows[4].message == "line 7: not valid UTF-8 (in column 'answer')" and rows[4].id == "c5"
    assert rows[5].candidate is None and rows[5].extra == {"cohort": "2025"}

    out = tmp_path / "results.csv"
    job = batch.BatchJob(fake_engine, src, out, use_judge=False)
    list(job.run())
    job.finish()
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == [*batch.BASE, "cohort", "result"]
    assert [(r["id"], r["status"]) for r in table] == [
        ("c1", "graded"), ("c2", "graded"), ("", "error"), ("", "error"), ("c5", "error"), ("c6", "graded")]
    assert json.loads(table[0]["result"])["score"] == float(table[0]["score"])
    assert table[0]["cohort"] == "2024" and table[5]["candidate"] == ""
    assert json.loads(table[0]["result"])["provenance"]["signals"] == ["embedding"]
    assert [r["line"] for r in batch.load_records(out)] == [2, 3, 5, 6, 7, 9]


def test_a_csv_without_the_required_columns_is_refused(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("id,answer\n1,x\n")
    with pytest.raises(InputError, match="needs the columns id, question, answer"):
        list(batch.read_rows(src))
    with pytest.raises(InputError, match="--format"):
        list(batch.read_rows(tmp_path / "a.txt"))


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_resume_after_a_torn_write_gives_one_row_per_input(fake_engine, tmp_path, suffix):
    src = jsonl(tmp_path / "answers.jsonl", GOOD_AND_BAD)
    out = tmp_path / f"results.{suffix}"
    job = batch.BatchJob(fake_engine, src, out)
    for i, _ in enumerate(job.run()):
        if i == 5:
            break  # stopped after 6 rows, as a crash would
    size = out.stat().st_size
    torn = job.output.encode(batch.grade_row(fake_engine, job.pending[0]))
    with open(out, "ab") as f:  # the 7th record, torn half way by the crash
        f.write(torn[: len(torn) // 2].encode())
    assert out.stat().st_size > size

    again = batch.BatchJob(fake_engine, src, out)
    assert len(again.done) == 6 and len(again.pending) == len(EXPECTED) - 6
    assert out.stat().st_size == size  # the torn record was dropped
    list(again.run())
    check_statuses(again.finish())
    check_statuses(batch.load_records(out))
    # a third run has nothing to do
    assert not batch.BatchJob(fake_engine, src, out).pending


def test_resume_refuses_a_different_input_or_options(fake_engine, tmp_path):
    src = jsonl(tmp_path / "answers.jsonl", GOOD_AND_BAD[:3])
    list(batch.BatchJob(fake_engine, src).run())
    with pytest.raises(InputError, match="different use_judge"):
        batch.BatchJob(fake_engine, src, use_judge=False)
    jsonl(src, GOOD_AND_BAD[:4])
    with pytest.raises(InputError, match="different input_sha256"):
        batch.BatchJob(fake_engine, src)
    foreign = tmp_path / "mine.jsonl"
    foreign.write_text('{"x": 1}\n')
    with pytest.raises(InputError, match="not written by `interviewer grade`"):
        batch.BatchJob(fake_engine, src, foreign)


def test_report(fake_engine, tmp_path):
    src = jsonl(tmp_path / "answers.jsonl", GOOD_AND_BAD + [
        {"id": "b1", "question": "Q1", "answer": "Attention lets tokens look at each other.", "candidate": "bob"},
        {"id": "b2", "question": "Q1", "answer": "I am not sure, something about matrices.", "candidate": "ann"},
    ])
    job = batch.BatchJob(fake_engine, src)
    list(job.run())
    records = job.finish()
    text = batch.report(records, title="Report")
    graded = [r for r in records if r["status"] == "graded"]
    assert text.startswith("# Report\n")
    assert f"{len(records)} rows: {len(graded)} graded, {len(records) - len(graded)} errors" in text
    q1 = [r["score"] for r in graded if r["result"]["question_id"] == "Q1"]
    assert f"| Q1: Explain the \"Self-Attention\" mechanism in Transformers. | 3 | {sum(q1) / 3:.1f} |" in text
    for section in ("## Per question", "## Per candidate", "## Score distribution", "## Most-missed key points",
                    "## Rows not graded"):
        assert section in text
    assert "| ann | 2 |" in text and "| bob | 2 |" in text
    assert "| 9–10 |" in text and text.count("–") >= 10
    assert "Q1 › " in text  # the passage to study
    assert "- `a2` line 2: transformers_llms.md has no question 'Q77'" in text
    assert "- `—` line 4: missing id" in text


def test_cli_needs_exactly_one_of_answers_and_question(tmp_path):
    def run(*args):
        return subprocess.run([str(BIN), "grade", *args], capture_output=True, text=True, timeout=60)

    out = run()
    assert out.returncode == 2 and "give an ANSWERS file" in out.stderr
    out = run(str(tmp_path / "a.jsonl"), "-q", "Q1")
    assert out.returncode == 2 and "not both" in out.stderr
    out = run("-q", "Q1", "-a", "x", "--report", "r.md")
    assert out.returncode == 2 and "for batch mode" in out.stderr


@pytest.mark.real
def test_a_run_killed_mid_way_resumes_to_exactly_one_row_per_input(tmp_path):
    questions = sorted(STRONG)
    rows = [{"id": f"r{i}", "question": questions[i % len(questions)],
             "answer": STRONG[questions[i % len(questions)]], "candidate": f"c{i % 3}"} for i in range(30)]
    rows[7] = {"id": "r7", "question": "Q99", "answer": "unknown question"}
    src = jsonl(tmp_path / "answers.jsonl", rows)
    out = tmp_path / "results.jsonl"
    args = [str(BIN), "grade", str(src), "--out", str(out), "--profile", "tiny", "--no-judge"]
    env = {**os.environ, "INTERVIEWER_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = batch.load_records(out)
    assert 5 <= len(partial) < 30

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming {out}: {len(partial)} of 30 rows already done" in done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [f"r{i}" for i in range(30)]
    assert [r["status"] for r in records].count("error") == 1 and records[7]["error"].startswith("line 8: ")


def test_unpaired_surrogate_escape_is_an_error_row(tmp_path):
    from interviewer.batch import RowError, read_rows

    data = b'{"id": "a", "question": "Q1", "answer": "bad \\ud800 text"}\n'
    rows = list(read_rows(data, "jsonl"))
    assert isinstance(rows[0], RowError) and "surrogate" in rows[0].message
