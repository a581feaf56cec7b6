import pytest

from interviewer import bank
from interviewer.errors import DocumentError, UnknownQuestion

from .conftest import EVAL


def test_seed_document_has_ten_questions_with_addressable_passages(seed_doc):
    doc = bank.load(seed_doc)
    assert list(doc.questions) == [f"Q{n}" for n in range(1, 11)]
    q4 = doc.question("Q4")
    why = q4.passage("Q4 › Deep Dive › Why Sine/Cosine?")
    assert why is not None and why.text.startswith("**Why Sine/Cosine?** It allows the model")
    formula = q4.passage("Q4 › Deep Dive › Sinusoidal Functions › 1")
    assert formula.text == r"$PE_{(pos, 2i)} = \sin(pos / 10000^{2i/d_{model}})$"  # LaTeX verbatim
    assert doc.question("q9").passage("Q9 › Deep Dive › Sparse Attention") is not None  # numbered list
    for q in doc.questions.values():
        assert q.short_answer and q.passages
        for p in q.passages:
            assert doc.contains(p.text), p.location  # every passage is a verbatim slice


@pytest.mark.parametrize("name", ["mohler", "saf_en", "scientsbank", "beetle"])
def test_eval_documents_load(name):
    doc = bank.load(EVAL / f"{name}.dev.md")
    assert len(doc.questions) >= 6
    assert all(q.short_answer for q in doc.questions.values())


def test_beetle_alternative_answers_are_parsed():
    q = bank.load(EVAL / "beetle.dev.md").question("Q2")
    assert "Terminal 2 and the positive terminal are not connected" in q.alternatives
    assert "Other acceptable" not in q.short_answer


def test_unknown_question_lists_known_ids(seed_doc):
    with pytest.raises(UnknownQuestion, match="Q1, Q2"):
        bank.load(seed_doc).question("Q99")


@pytest.mark.parametrize("text, where, expected", [
    ("# T\n\n## Q1: A?\n\nno answer header\n", ":5:", "Answer:"),
    ("# T\n\n## Question one\n", ":3:", "question header"),
    ("# T\n\n## Q1: A?\n**Answer:**\nx\n\n## Q1: B?\n**Answer:**\ny\n", ":7:", "appears twice"),
    ("# T\n\n## Q1: A?\n**Reasoning & Deep Dive:**\n* x\n", ":4:", "'**Answer:**' before"),
    ("just text\n", ":2:", "at least one question"),
])
def test_malformed_documents_name_file_line_and_expectation(tmp_path, text, where, expected):
    path = tmp_path / "bad.md"
    path.write_text(text)
    with pytest.raises(DocumentError) as err:
        bank.load(path)
    assert str(path) + where in str(err.value) and expected in str(err.value)


def test_missing_document_says_what_to_do(tmp_path):
    with pytest.raises(DocumentError, match="--doc"):
        bank.load(tmp_path / "nope.md")
