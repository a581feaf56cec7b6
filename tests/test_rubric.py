import pytest
import yaml

from interviewer import bank, rubric
from interviewer.errors import RubricError

from .conftest import EVAL


def test_curated_seed_rubric_cites_real_passages(seed_doc):
    r = rubric.load_for(seed_doc)
    doc = r.document
    rows = list(r)
    assert len(rows) == 10 and all(q.curated for q in rows)
    for qr in rows:
        assert 3 <= len(qr.key_points) <= 7
        assert qr.misconceptions, qr.question.id
        for kp in qr.key_points:
            passage = qr.question.passage(kp.source)
            assert passage is not None and kp.quote in passage.text and doc.contains(kp.quote)


def _copy_with_rubric(tmp_path, seed_doc, edit_doc=None, edit_rubric=None):
    doc_text = seed_doc.read_text()
    rub_text = rubric.rubric_path(seed_doc).read_text()
    if edit_doc:
        doc_text = edit_doc(doc_text)
    if edit_rubric:
        rub_text = edit_rubric(rub_text)
    (tmp_path / "doc.md").write_text(doc_text)
    (tmp_path / "doc.rubric.yaml").write_text(rub_text)
    return tmp_path / "doc.md"


def test_document_edit_that_breaks_a_quote_fails_loudly(tmp_path, seed_doc):
    path = _copy_with_rubric(tmp_path, seed_doc, edit_doc=lambda t: t.replace(
        "Every word is projected into three vectors", "Each token becomes three vectors"))
    with pytest.raises(RubricError, match="no longer in Q1 › Deep Dive › Q, K, V"):
        rubric.load_for(path)


def test_unknown_source_lists_the_passages(tmp_path, seed_doc):
    path = _copy_with_rubric(tmp_path, seed_doc, edit_rubric=lambda t: t.replace(
        "Q1 › Deep Dive › Q, K, V", "Q1 › Deep Dive › QKV", 1))
    with pytest.raises(RubricError, match="not a passage of the document.*Q1 › Deep Dive › Result"):
        rubric.load_for(path)


def test_bad_weight_and_yaml_are_reported(tmp_path, seed_doc):
    path = _copy_with_rubric(tmp_path, seed_doc, edit_rubric=lambda t: t.replace("weight: 2.0", "weight: -1", 1))
    with pytest.raises(RubricError, match="weight must be positive"):
        rubric.load_for(path)
    (tmp_path / "doc.rubric.yaml").write_text("questions: [unclosed")
    with pytest.raises(RubricError, match="not valid YAML"):
        rubric.load_for(path)


@pytest.mark.parametrize("name", ["mohler", "saf_en", "scientsbank", "beetle"])
def test_every_eval_question_gets_a_drafted_rubric(name):
    r = rubric.load_for(EVAL / f"{name}.dev.md")
    for qr in r:
        assert not qr.curated and 1 <= len(qr.key_points) <= rubric.MAX_KEY_POINTS
        for kp in qr.key_points:
            assert r.document.contains(kp.quote)


def test_alternative_answers_are_phrasings_only_of_an_answer_that_is_one_key_point():
    r = rubric.load_for(EVAL / "beetle.dev.md")
    one, three = r.for_question("Q2"), r.for_question("Q24")
    assert len(one.key_points) == 1 and one.key_points[0].alternatives == one.question.alternatives
    assert len(three.key_points) == 3 and three.question.alternatives
    assert not any(kp.alternatives for kp in three.key_points)


def test_draft_round_trips_through_yaml(tmp_path):
    doc = bank.load(EVAL / "beetle.dev.md")
    text = rubric.to_yaml(rubric.load(doc))
    (tmp_path / "beetle.md").write_text(doc.text)
    (tmp_path / "beetle.rubric.yaml").write_text(text)
    loaded = rubric.load_for(tmp_path / "beetle.md")
    assert all(q.curated for q in loaded)
    q2 = loaded.for_question("Q2")
    assert q2.key_points[0].alternatives  # "Other acceptable answers" survive as alternatives
    assert yaml.safe_load(text)["document"] == "beetle.dev.md"
