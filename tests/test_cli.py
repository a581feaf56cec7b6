"""The installed `interviewer` command, run as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "interviewer"


def run(*args, input=None, env=None):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, input=input, timeout=300,
                          env={**os.environ, **(env or {})})


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("grade", "questions", "rubric", "models"):
        assert command in out.stdout


def test_questions_and_rubric_check():
    out = run("questions", "--search", "attention")
    assert out.returncode == 0 and "Q1" in out.stdout and "Q2" in out.stdout and "Q5" not in out.stdout
    out = run("rubric", "check")
    assert out.returncode == 0 and "curated" in out.stdout


@pytest.mark.real
def test_grade_json_from_stdin_with_the_tiny_profile():
    out = run("grade", "-q", "Q4", "--profile", "tiny", "--json",
              input="Transformers see all tokens at once, so sine and cosine position encodings add word order.")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["question_id"] == "Q4" and 0 <= result["score"] <= 10
    assert result["key_points"][0]["citation"]["quote"]
    assert result["provenance"]["judge"]["id"].startswith("SmolLM2")


def test_unknown_question_is_a_clear_error():
    out = run("grade", "-q", "Q77", "--no-judge", "--profile", "tiny", "-a", "x y z")
    assert out.returncode == 2 and "no question 'Q77'" in out.stderr


@pytest.mark.real
def test_a_batch_does_not_start_without_the_judge_it_asks_for(tmp_path):
    rows = tmp_path / "answers.jsonl"
    rows.write_text(json.dumps({"id": "a", "question": "Q1", "answer": "Attention weighs tokens by relevance."}) + "\n")
    broken = {"INTERVIEWER_JUDGE_PATH": str(tmp_path / "missing.gguf")}
    out = run("grade", str(rows), "--profile", "tiny", env=broken)
    assert out.returncode == 2 and "judge model cannot run" in out.stderr and "--no-judge" in out.stderr
    results = tmp_path / "answers.results.jsonl"
    assert not results.exists() or results.read_text() == ""  # nothing stored that would be resumed as final
    out = run("grade", str(rows), "--profile", "tiny", "--no-judge", env=broken)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["status"] for line in results.read_text().splitlines()] == ["graded"]


def test_corrupt_model_names_the_fix(tmp_path):
    bad = tmp_path / "judge.gguf"
    bad.write_bytes(b"not a model")
    out = run("grade", "-q", "Q1", "--profile", "tiny", "--json", "-a", "Attention weighs tokens by relevance.",
              env={"INTERVIEWER_JUDGE_PATH": str(bad)})
    assert out.returncode == 0
    result = json.loads(out.stdout)
    assert result["provenance"]["judge_status"].startswith("unavailable") and result["needs_review"]
