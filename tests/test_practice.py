"""The terminal practice session and history: reading answers, a whole session with fakes, and the
real command driven in a pseudo-terminal."""

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

from interviewer import practice
from interviewer.practice import Answer, read_answer
from interviewer.sessions import Interviews
from interviewer.store import Store

from .conftest import ADVERSARIAL

BIN = Path(sys.executable).parent / "interviewer"
STRONG = {qid: " ".join(q["strong"].split()) for qid, q in ADVERSARIAL["questions"].items()}


def plain_console() -> Console:
    return Console(file=io.StringIO(), width=120, highlight=False)


def read(text: str) -> Answer:
    return read_answer(io.StringIO(text), plain_console())


def test_read_answer_ends_at_an_empty_line_a_dot_or_end_of_input():
    assert read("first line\nsecond line\n\nnext answer\n") == Answer("first line\nsecond line")
    assert read("\n\nafter blank lines\n.\n") == Answer("after blank lines")
    assert read("para one\n.\n") == Answer("para one")
    assert read("no newline at the end") == Answer("no newline at the end")
    assert read("") == Answer(command="eof")
    assert read(".\n") == Answer("")


def test_commands_count_only_alone_on_the_first_line():
    assert read(":hint\n") == Answer(command=":hint")
    assert read("  :SKIP  \n") == Answer(command=":skip")
    assert read("my answer\n:quit\n\n") == Answer("my answer\n:quit")
    assert read(":quit is what I would type\n\n") == Answer(":quit is what I would type")


@pytest.fixture
def interviews(fake_engine, settings):
    store = Store(settings.database)
    yield Interviews(fake_engine, store)
    store.close()


def test_a_session_of_one_question_says_so(interviews):
    out = plain_console()
    practice.Practice(interviews, out, io.StringIO(":quit\n")).run(count=1)
    assert "(1 question, document order)" in out.file.getvalue()


def test_a_whole_session_with_fakes(interviews):
    out = plain_console()
    stream = io.StringIO(":help\n:hint\n:hint\n:repeat\n" + STRONG["Q1"] + "\n\n" + ":skip\n" + ":what\n:quit\n")
    session = practice.Practice(interviews, out, stream)
    report = session.run(count=3, candidate="ada")
    text = out.file.getvalue()
    assert text.count("Question 1/3 · Q1") == 2  # asked, then repeated
    assert "(3 questions, document order, candidate ada)" in text
    assert "Hint 1/" in text and "Hint 2/" in text and "it starts “" in text
    assert "Score " in text and "key point" in text and "Reference answer:" in text
    assert "Skipped." in text and "Unknown command :what" in text and "Question 3/3 · Q3" in text
    for name in practice.COMMANDS:
        assert name in text
    assert [(i.question_id, i.status) for i in report.items] == [("Q1", "answered"), ("Q2", "skipped"),
                                                                  ("Q3", "not_asked")]
    assert report.state == "finished" and report.study  # Q2's passages at least
    practice.summary(out, report)
    text = out.file.getvalue()
    assert "Session summary" in text and "1 answered, 1 skipped, 1 not asked" in text
    assert "What to study:" in text and "Q2 › " in text
    attempts = interviews.store.attempts(candidate="ada")
    assert [(a.question_id, a.status) for a in attempts] == [("Q1", "answered"), ("Q2", "skipped")]
    assert attempts[0].answer == STRONG["Q1"] and attempts[0].result.score == report.items[0].score


def test_history_shows_sessions_and_per_question_progress(interviews):
    for answers in ([STRONG["Q1"] + "\n\n", ":skip\n"], ["Attention looks at words.\n\n", STRONG["Q2"] + "\n\n"]):
        practice.Practice(interviews, plain_console(), io.StringIO("".join(answers))).run(count=2, candidate="ada")
    practice.Practice(interviews, plain_console(), io.StringIO(":skip\n:quit\n")).run(count=2, candidate="bob")
    out = plain_console()
    practice.history(interviews.store, out, "ada")
    text = out.file.getvalue()
    assert "Sessions for ada" in text and text.count("finished") == 2 and "2/2" in text and "1/2" in text
    assert "Per-question progress: transformers_llms" in text
    q1 = next(line for line in text.splitlines() if "Q1: Explain" in line)
    first, second = (a.score for a in interviews.store.attempts(candidate="ada") if a.question_id == "Q1")
    assert re.search(rf"│\s+2 │\s+{max(first, second):.1f} │\s+{second:.1f} │ (up|down|same)", q1), q1
    q2 = next(line for line in text.splitlines() if "Q2: What is" in line)
    assert "skipped" not in q2 and "bob" not in text
    out = plain_console()
    practice.history(interviews.store, out)
    assert "candidate" in out.file.getvalue() and "bob" in out.file.getvalue()
    out = plain_console()
    practice.history(interviews.store, out, "nobody")
    assert "No attempts yet for nobody" in out.file.getvalue()


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "INTERVIEWER_DATA_DIR": str(tmp_path), "INTERVIEWER_DATABASE_URL":
            f"sqlite:///{tmp_path / 'practice.db'}", "TERM": "xterm-256color", "INTERVIEWER_THREADS": "2"}


def spawn(args, env):
    # Ctrl-C as in a terminal: a suite started in the background (`cmd &`) ignores SIGINT, and a
    # child inherits that, so Python would never raise KeyboardInterrupt in it
    return pexpect.spawn(str(BIN), args, env=env, encoding="utf-8", timeout=180, dimensions=(50, 160),
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.real
def test_practice_in_a_terminal_with_hint_paste_skip_and_quit(env, tmp_path):
    child = spawn(["practice", "--profile", "tiny", "--count", "3", "--candidate", "tester"], env)
    child.expect("Finish with an empty line")
    child.expect(r"Question 1/3 · Q1")
    child.sendline(":hint")
    child.expect("Hint 1/")
    child.sendline(":repeat")
    child.expect(r"Question 1/3 · Q1")
    # a paste whose empty line is followed at once by more text stays one answer
    child.send("Each token gets a query, a key and a value vector.\n\n"
               "The attention weights are the softmax of the query-key dot products.\n")
    child.expect("… ")
    child.sendline("")
    child.expect("Score")
    child.expect("Reference answer")
    child.expect(r"Question 2/3 · Q2")
    child.sendline(":skip")
    child.expect("Skipped.")
    child.expect(r"Question 3/3 · Q3")
    child.sendline(":quit")
    child.expect("Session summary")
    child.expect("1 answered, 1 skipped, 1 not asked")
    child.expect("What to study")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    store = Store(env["INTERVIEWER_DATABASE_URL"])
    attempts = store.attempts(candidate="tester")
    assert [(a.question_id, a.status) for a in attempts] == [("Q1", "answered"), ("Q2", "skipped")]
    assert attempts[0].answer == ("Each token gets a query, a key and a value vector.\n\n"
                                  "The attention weights are the softmax of the query-key dot products.")
    assert attempts[0].result.provenance.judge_status == "ok"
    assert store.session(attempts[0].session_id).state == "finished"

    out = subprocess.run([str(BIN), "history", "--candidate", "tester"], env={**env, "COLUMNS": "120"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "\x1b[" not in out.stdout  # plain text when not a terminal
    assert "Sessions for tester" in out.stdout and "1/3" in out.stdout and "finished" in out.stdout
    assert "Q1: Explain" in out.stdout and "Q2: What is" in out.stdout and "skipped" in out.stdout


@pytest.mark.real
def test_ctrl_c_exits_cleanly_with_the_answers_so_far_saved(env):
    env = {**env, "PYTHONFAULTHANDLER": "1"}  # SIGABRT prints every thread's stack
    child = spawn(["practice", "--profile", "tiny", "--no-judge", "--count", "2", "--candidate", "ctrl"], env)
    child.expect(r"Question 1/2 · Q1")
    child.sendline(STRONG["Q1"])
    child.sendline("")
    child.expect("Reference answer")
    child.expect(r"Question 2/2 · Q2")
    child.expect("> ")  # at the prompt, as a user would press it
    child.sendintr()
    try:
        child.expect("Interrupted; your answers so far are saved.", timeout=60)
    except pexpect.TIMEOUT:  # a hang: show where every thread is
        child.kill(signal.SIGABRT)
        child.expect(pexpect.EOF, timeout=30)
        pytest.fail(f"Ctrl-C at the prompt had no effect in 60 s; the threads were:\n{child.before[-8000:]}")
    child.expect("Session summary")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "Traceback" not in child.before
    store = Store(env["INTERVIEWER_DATABASE_URL"])
    attempts = store.attempts(candidate="ctrl")
    assert [(a.question_id, a.status) for a in attempts] == [("Q1", "answered")]
    assert store.session(attempts[0].session_id).state == "finished"


def test_plain_text_when_stdout_is_not_a_terminal(env):
    out = subprocess.run([str(BIN), "practice", "--profile", "tiny", "--no-judge", "--count", "1"], env=env,
                         input=":hint\n:quit\n", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "\x1b[" not in out.stdout and "Question 1/1 · Q1" in out.stdout and "Hint 1/" in out.stdout
    assert "0 answered, 0 skipped, 1 not asked" in out.stdout


def test_every_command_has_help_with_examples():
    from typer.testing import CliRunner

    from interviewer.cli import app

    runner = CliRunner()
    commands = ["", "grade", "practice", "history", "questions", "calibrate", "serve", "rubric", "rubric draft",
                "rubric check", "models", "models list", "models verify", "models fetch"]
    for command in commands:
        out = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
        assert out.exit_code == 0, (command, out.output)
        assert "Example" in out.output, command
