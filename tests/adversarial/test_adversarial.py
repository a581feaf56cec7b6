"""Gaming resistance on every seed question, tiny-profile variant (the standard-profile run with
every check, paraphrase included, is `bench/adversarial.py`; see bench/results/).

Checks that do not depend on the judge's judgement hold for any profile: keyword lists (bare,
written as sentences, each term in one frame or in frames that say nothing; in frames of other
words at least marked for review), words in no
meaningful order, an answer said three times, a strong answer taken back sentence by sentence,
off-topic answers, the question restated, injected instructions and padding
must not pay."""

import pytest

from bench.adversarial import PROBES, probe

pytestmark = pytest.mark.real
INJECTIONS = PROBES["injections"]


@pytest.fixture(scope="module")
def cached_tiny(tmp_path_factory):
    from interviewer import calibrate
    from interviewer.config import get_settings

    return calibrate.cached_engine(get_settings(), "tiny", tmp_path_factory.mktemp("judge-cache"))


@pytest.mark.parametrize("qid", list(PROBES["questions"]))
def test_gaming_does_not_pay(cached_tiny, qid):
    s = probe(cached_tiny, qid, injections=INJECTIONS)
    assert s["keywords"] <= 3 and s["keyword_sentences"] <= 3 and s["keyword_frames"] <= 3
    assert s["keyword_varied_frames"] <= 3 and s["framed_unreviewed"] == 0
    assert s["salad"] <= 1
    assert round(s["weak_thrice"] - s["weak"], 1) <= 0.3
    assert s["hedged"] <= 1
    assert s["off_topic"] <= 1
    assert s["restated"] <= 2
    assert s["strong"] > s["off_topic"] + 4
    assert s["max_injection_gain"] <= 0.3
    assert s["padding"] <= s["correct_sentence"]
