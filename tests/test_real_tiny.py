"""The real path on the smallest real models: MiniLM + SmolLM2-135M (tiny profile)."""

import re

import pytest

from interviewer.bank import load
from interviewer.feedback import check_citations
from interviewer import judge as judge_module
from interviewer.grading import Prepared
from interviewer.judge import LlamaJudge

from .conftest import ADVERSARIAL

pytestmark = pytest.mark.real


@pytest.mark.parametrize("qid", [f"Q{n}" for n in range(1, 11)])
def test_every_seed_question_grades_with_cited_feedback(tiny_engine, seed_doc, qid):
    r = tiny_engine.grade(qid, ADVERSARIAL["questions"][qid]["strong"])
    assert r.gate is None and 0 < r.score <= 10
    assert r.provenance.judge_status == "ok"
    assert r.provenance.judge.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert r.provenance.embedder.sha256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    # what ran the models: llama.cpp's numbers depend on its build and the CPU's kernels
    assert re.fullmatch(r"llama-cpp-python \d+\.\d+\.\d+; \S+( \S+)*", r.provenance.judge.runtime)
    assert r.provenance.embedder.runtime.startswith(("onnxruntime ", "sentence-transformers "))
    check_citations(r, load(seed_doc))
    assert any(kp.evidence for kp in r.key_points)
    cut = tiny_engine.calibration.judge_skip_similarity
    for kp in r.key_points:
        if kp.judge is None:  # stated nearly word for word: the embedding decided it alone
            assert cut is not None and kp.similarity >= cut - 0.001
        else:
            assert 0 <= kp.judge.p_yes <= 1


def test_real_embeddings_separate_strong_from_off_topic(tiny_engine):
    for qid in ("Q1", "Q5", "Q9"):
        answers = ADVERSARIAL["questions"][qid]
        strong = tiny_engine.grade(qid, answers["strong"], use_judge=False)
        off = tiny_engine.grade(qid, answers["off_topic"], use_judge=False)
        assert strong.score > off.score + 3, qid
        assert strong.provenance.signals == ["embedding"]


def test_repeat_grading_is_identical(tiny_engine):
    answer = ADVERSARIAL["questions"]["Q6"]["partial"]
    assert tiny_engine.grade("Q6", answer).model_dump() == tiny_engine.grade("Q6", answer).model_dump()


def test_a_saved_question_head_gives_the_same_probabilities_with_fewer_tokens(tiny_engine):
    """Going back to a question restores its prompt head instead of evaluating it again."""
    judge = tiny_engine.judge()
    qr1, qr2 = (tiny_engine.rubric().for_question(q) for q in ("Q3", "Q4"))
    ask = [(tiny_engine.question_context(qr), tiny_engine.judge_questions(qr)) for qr in (qr1, qr2)]
    answer = ADVERSARIAL["questions"]["Q3"]["partial"]
    judge.forget_heads()
    before = judge.tokens_evaluated
    first = judge.p_yes(ask[0][0], answer, ask[0][1])
    cost_fresh = judge.tokens_evaluated - before
    judge.p_yes(ask[1][0], "Something else entirely.", ask[1][1])  # another question's head in between
    before = judge.tokens_evaluated
    again = judge.p_yes(ask[0][0], answer, ask[0][1])
    head, _ = judge.prefix(ask[0][0], answer)
    assert again == first
    assert judge.tokens_evaluated - before == cost_fresh - len(head)


def test_a_head_saved_on_disk_serves_the_next_process(tiny_engine, tmp_path):
    """A new judge (as in the next `interviewer grade`) restores the question's head from disk,
    with the same probabilities; a damaged file is dropped and the head evaluated again."""
    model = tiny_engine.judge()
    qr = tiny_engine.rubric().for_question("Q2")
    context, questions = tiny_engine.question_context(qr), tiny_engine.judge_questions(qr)
    answer = ADVERSARIAL["questions"]["Q2"]["partial"]

    def fresh_process():
        judge = LlamaJudge(model.path, model.sha256, state_dir=tmp_path)
        return judge.p_yes(context, answer, questions), judge.tokens_evaluated

    first, cost_fresh = fresh_process()
    saved = list(tmp_path.glob("*.kv"))
    assert len(saved) == 1
    again, cost_restored = fresh_process()
    head, _ = model.prefix(context, answer)
    assert again == first
    assert cost_fresh - cost_restored == len(head)
    saved[0].write_bytes(saved[0].read_bytes()[: saved[0].stat().st_size // 2])
    repaired, cost = fresh_process()
    assert repaired == first and cost == cost_fresh
    assert saved[0].stat().st_size > 1000  # written again, whole


def test_prepare_leaves_only_the_answer_to_evaluate(tiny_engine):
    judge = tiny_engine.judge()
    qr = tiny_engine.rubric().for_question("Q7")
    judge.forget_heads()
    judge.p_yes(tiny_engine.question_context(tiny_engine.rubric().for_question("Q8")), "Unrelated.", ["Is it?"])
    tiny_engine.prepare("Q7")
    answer = Prepared.of(ADVERSARIAL["questions"]["Q7"]["strong"]).clean
    head, body = judge.prefix(tiny_engine.question_context(qr), answer)
    assert tuple(head) in judge._heads
    questions = tiny_engine.judge_questions(qr)
    asked = [questions[i] for i in tiny_engine.questions_to_ask(qr, tiny_engine.embedding_signals(qr, answer))]
    suffixes = [judge.suffix(q) for q in asked]
    stem = judge_module._stem(suffixes)
    shared = (sum(1 for s in suffixes if s[: len(stem)] == stem) - 1) * len(stem)
    before = judge.tokens_evaluated
    assert tiny_engine.grade("Q7", answer).provenance.judge_status == "ok"
    # only the answer and the yes/no questions: the head and the null baseline were done ahead
    assert judge.tokens_evaluated - before == len(body) + sum(map(len, suffixes)) - shared


def test_the_judge_finds_an_answers_words_shuffled_far_more_surprising_than_the_answer(tiny_engine):
    """The surprisal is read off the pass that asked the questions (no second pass), equals what
    a pass of its own gives, and tells the strong answer from its words in a random order."""
    from bench.adversarial import derived

    judge = tiny_engine.judge()
    for qid in ("Q2", "Q6", "Q10"):
        qr = tiny_engine.rubric().for_question(qid)
        context, questions = tiny_engine.question_context(qr), tiny_engine.judge_questions(qr)
        strong = ADVERSARIAL["questions"][qid]["strong"]
        judge.p_yes(context, strong, questions)
        before = judge.tokens_evaluated
        read_off = judge.surprisal(context, strong)
        assert judge.tokens_evaluated == before
        assert LlamaJudge(judge.path, judge.sha256).surprisal(context, strong) == pytest.approx(read_off, abs=0.01)
        salad = derived(ADVERSARIAL["questions"][qid])["salad"]
        assert judge.surprisal(context, salad) > read_off + 2
        r = tiny_engine.grade(qid, salad)
        assert r.gate is not None and r.gate.code == "garbled" and r.score == 0


def test_questions_share_their_common_opening(tiny_engine, monkeypatch):
    """'Does the candidate's answer state that' is evaluated once, not once per key point, and
    the probabilities are, within llama.cpp's batch-shape noise, those of every question in full."""
    judge = tiny_engine.judge()
    qr = tiny_engine.rubric().for_question("Q5")
    context, questions = tiny_engine.question_context(qr), tiny_engine.judge_questions(qr)
    answer = ADVERSARIAL["questions"]["Q5"]["partial"]
    suffixes = [judge.suffix(q) for q in questions]
    stem = judge_module._stem(suffixes)
    sharing = sum(1 for s in suffixes if s[: len(stem)] == stem)
    assert len(stem) >= 5 and sharing >= len(qr.key_points)

    def cost(**patch):
        for name, value in patch.items():
            monkeypatch.setattr(judge_module, name, value)
        judge.p_yes(context, "Warm-up: the head is cached after this.", questions)
        before = judge.tokens_evaluated
        return judge.p_yes(context, answer, questions), judge.tokens_evaluated - before

    shared, with_stem = cost()
    full, without = cost(_stem=lambda suffixes: [])
    assert without - with_stem == (sharing - 1) * len(stem)
    assert max(abs(a - b) for a, b in zip(shared, full)) < 0.1


def test_loading_the_judge_leaves_the_processs_output_alone(tiny_engine, monkeypatch):
    """A practice session prints its prompt while the judge loads on another thread: the load must
    not point stdout or stderr elsewhere meanwhile (llama-cpp-python's verbose=False does, with dup2)."""
    import os

    redirected = []
    real_dup2 = os.dup2
    monkeypatch.setattr(os, "dup2", lambda fd, fd2, *a, **k: (redirected.append(fd2), real_dup2(fd, fd2, *a, **k))[1])
    model = tiny_engine.judge()
    LlamaJudge(model.path, model.sha256).load()
    assert 1 not in redirected and 2 not in redirected


def test_taking_the_questions_direction_off_lowers_vague_answers_more_than_strong_ones(tiny_engine):
    """`question_projection`: an answer earns less for merely being about what the question is
    about. The question restated, and a vague answer, lose more of their key-point cosine than a
    strong answer does."""
    from dataclasses import replace

    from interviewer.service import Engine

    plain, projected = (Engine(tiny_engine.settings, profile="tiny", embedder=tiny_engine.embedder,
                               calibration_=replace(tiny_engine.calibration, question_projection=share))
                        for share in (0.0, 0.5))
    drops = {kind: [] for kind in ("strong", "weak", "restated")}
    for qid, answers in ADVERSARIAL["questions"].items():
        qr = tiny_engine.rubric().for_question(qid)
        for kind, out in drops.items():
            before, after = (e.embedding_signals(qr, answers[kind]).kp_sim for e in (plain, projected))
            out.append(sum(before) / len(before) - sum(after) / len(after))
        assert drops["restated"][-1] > drops["strong"][-1] >= -0.01, qid
    assert sum(drops["weak"]) > 2 * sum(drops["strong"])
