import json

import pytest

from interviewer import text

from .conftest import ADVERSARIAL, EVAL

BASE = "Self-attention mixes information between tokens."
DEV_ANSWERS = [json.loads(line)["answer"] for name in ("mohler", "saf_en", "scientsbank", "beetle")
               for line in (EVAL / f"{name}.dev.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("injection", ADVERSARIAL["injections"])
def test_instructions_to_the_grader_are_removed(injection):
    clean, removed = text.split_injections(f"{BASE} {injection}")
    assert clean == BASE and removed


def test_no_real_student_answer_is_mistaken_for_an_injection():
    assert [answer for answer in DEV_ANSWERS if text.split_injections(answer)[1]] == []


@pytest.mark.parametrize("qid", list(ADVERSARIAL["questions"]))
def test_keyword_lists_are_recognised_and_sentences_are_not(qid):
    answers = ADVERSARIAL["questions"][qid]
    assert text.looks_like_keyword_list(answers["keywords"])
    terms = [term.strip() for term in answers["keywords"].split(",")]
    for frame in ("{}.", "{} matters here.", "It involves {}.", "One key idea is {}, which matters."):
        framed = " ".join(frame.format(term) for term in terms)
        assert text.looks_like_keyword_list(framed), framed
    varied = ("{} plays a role.", "Think of {}.", "{} is important.", "Another factor is {}.", "Consider {}.")
    framed = " ".join(varied[i % len(varied)].format(term) for i, term in enumerate(terms))
    assert text.looks_like_keyword_list(framed), framed
    for kind in ("strong", "paraphrase", "partial", "weak", "correct_sentence"):
        assert not text.looks_like_keyword_list(answers[kind]), kind


def test_segments_split_sentences_bullets_and_long_clauses():
    segs = text.segments("First point here. * second bullet\nThird line; it has a clause that goes on and on, "
                         "because we need a long sentence")
    assert "First point here." in segs and "second bullet" in segs
    assert any(s.startswith("because") or s.startswith("we need") for s in segs) or len(segs) >= 4


def test_negations_are_counted_in_every_form():
    assert text.negations("BERT is not a decoder, it isn't generative and never was; no, nothing.") == 5
    assert text.negations("It cannot see the future, neither left nor right.") == 3
    assert text.negations("Notation and nonetheless know nothingness.") == 0


def test_stem_joins_the_forms_of_a_word():
    assert {text.stem(w) for w in ("scale", "scales", "scaled", "scaling", "Scaling")} == {"scal"}


def test_restating_the_question_in_other_forms_of_its_words_adds_nothing():
    question = "What are the scaling laws for LLMs?"
    reference = "Loss falls as a power law as model size, data and compute scale up."
    assert text.novel_words("The scaling laws are the laws about how LLMs scale.", question) == []
    assert text.restates("The scaling laws are the laws about how LLMs scale.", question, reference)
    assert not text.restates("Scaling laws say loss follows a power law in compute.", question, reference)


def test_real_answers_whose_sentences_share_a_frame_are_not_keyword_lists():
    framed = [answer for answer in DEV_ANSWERS if text.unframed(answer) != answer]
    assert len(framed) >= 10  # e.g. "When bulb A is out, … When bulb B is out, … When bulb C is out, …"
    assert [answer for answer in framed if text.looks_like_keyword_list(answer)] == []


def test_real_answers_with_short_sentences_in_empty_frames_are_not_keyword_lists():
    framed = [answer for answer in DEV_ANSWERS if text.without_empty_frames(answer) != answer]
    assert len(framed) >= 25  # e.g. "Because it is the straightest part."
    assert [answer for answer in framed if text.looks_like_keyword_list(answer)] == []


def test_empty_frames_are_cut_from_short_sentences_only():
    assert text.without_empty_frames("It involves word order. Sine waves play a role.") == "word order. sine waves."
    long = "The key and the lock are both part of the circuit that the current flows through."
    assert text.without_empty_frames(long) == long


def test_a_claim_taken_back_is_dropped_with_its_retraction():
    answer = ("Attention is parallel. Or maybe not. It uses sines, or perhaps the opposite. "
              "Check whether it has seeds or not. Masks hide the future.")
    assert text.without_retractions(answer) == (
        "Check whether it has seeds or not. Masks hide the future.",
        ["Attention is parallel.", "Or maybe not.", "It uses sines, or perhaps the opposite."])
    assert text.without_retractions("Maybe not.") == ("", ["Maybe not."])
    answered = "Does attention see the order of tokens? Perhaps not. Positions are added."
    assert text.without_retractions(answered) == (answered, [])


def test_no_real_answer_is_taken_for_a_retraction():
    """“Whether it has seeds or not”, “if it will run or not”: an or-not without a comma or a
    hedge asks a question; it takes nothing back."""
    assert [answer for answer in DEV_ANSWERS if text.without_retractions(answer)[1]] == []


def test_a_frame_is_taken_off_both_ends_of_each_sentence():
    assert text.unframed("It is about A here. It is about B and C here. It is about D here.") == "A. B and C. D."
    assert text.unframed("Attention mixes tokens. It is fast. It scales.") == "Attention mixes tokens. It is fast. It scales."


def test_a_sentence_said_again_is_dropped_and_the_rest_kept_as_written():
    answer = ("Attention is quadratic.\nIt scales badly. ATTENTION is quadratic! Again: it scales badly. "
              "It scales badly with length, so long inputs are split. 1111 1111. 1111 1111.")
    assert text.without_repeats(answer) == (
        "Attention is quadratic.\nIt scales badly. It scales badly with length, so long inputs are split. "
        "1111 1111. 1111 1111.", ["ATTENTION is quadratic!", "Again: it scales badly."])
    assert text.without_repeats("Nothing repeats here.  At all.") == ("Nothing repeats here.  At all.", [])


@pytest.mark.parametrize("qid", list(ADVERSARIAL["questions"]))
def test_terms_in_frames_of_any_words_are_fragments_and_real_answers_are_not(qid):
    answers = ADVERSARIAL["questions"][qid]
    terms = [term.strip() for term in answers["keywords"].split(",")]
    for frames in (("{} matters here.", "It involves {}.", "Think of {}."), ("{} is worth noting.", "Don't forget {}.")):
        framed = " ".join(frames[i % len(frames)].format(term) for i, term in enumerate(terms))
        assert text.fragmented(framed), framed
    for kind in ("strong", "paraphrase", "partial", "weak", "weak_reworded", "correct_sentence", "negated",
                 "off_topic", "restated", "misconception"):
        assert not text.fragmented(answers[kind]), kind


def test_few_real_answers_are_runs_of_fragments():
    fragmented = [answer for answer in DEV_ANSWERS if text.fragmented(answer)]
    assert len(fragmented) <= 3, fragmented  # network addresses listed in SAF
    assert not text.fragmented("Attention sees all tokens. It cannot tell order. Positions are added.")
    assert text.fragmented("Attention sees all tokens. It cannot tell order. Positions are added. Sines encode them.")
