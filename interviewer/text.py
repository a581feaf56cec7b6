"""Pure text helpers: segmenting answers, spotting injected instructions and keyword lists."""

from __future__ import annotations

import os
import re
from collections import Counter

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|(?:^|\s)[*•-]\s+|\s\d+[.)]\s+")
_CLAUSE = re.compile(r";\s+|,\s+(?:and|but|which|so|while|because|whereas)\s+|\s+(?:because|whereas|so that)\s+|:\s+")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'+\-]*")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|none|nothing|cannot)\b|n't\b", re.IGNORECASE)

STOPWORDS = frozenset(
    """a an the is are was were be been being of in on at to for from by with as and or but not no it its
    this that these those there their they them he she his her we our you your i me my so than then
    which who whom what when where why how do does did can could would should will shall may might
    must has have had into onto over under about after before between through during each every all
    any some such only also very more most other same just if else while because""".split()
)

# Text addressed to the grader rather than to the interviewer's question: removed before scoring.
_INJECTION = re.compile(
    r"""(
      \b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(rubric|instruction|prompt|rule|previous|above|grading|criteria)
    | \b(give|award|assign)\b.{0,40}\b(full|maximum|max|perfect|top)\s+(marks?|scores?|points|grades?|credit)
    | \b(grade|score|mark|rate)\s+(this|the|my)\s+(answer|response)\b
    | \b(score|grade|mark|rating)\s*[:=]\s*\d
    | \b10\s*/\s*10\b|\b10\s+out\s+of\s+10\b
    | \b(mark|treat|consider|count)\b.{0,30}\b(key\s*points?|criteria|answer)\b.{0,30}\b(covered|correct|satisfied|complete)
    | \b(covers?|satisf\w+|meets?)\b.{0,30}\b(every|all)\b.{0,20}\b(key\s*points?|criteria|rubric)
    | \b(rubric|grading)\s+(update|override|change|note)\b
    | \bnote\s+to\s+(the\s+)?(grader|examiner|evaluator|assistant|model)
    | \b(as\s+the\s+|you\s+are\s+(the\s+|a\s+)?)(grader|examiner|evaluator)\b
    | \b(must|should)\s+(answer|reply|respond|say|output)\s+["']?yes
    | ^\s*(system|assistant|user|human)\s*:
    | <\|?/?\s*(im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id)\s*\|?>
    | "(score|covered|verdict|needs_review|grade)"\s*:
    | \b(ignorez|ignorer|oubliez|donnez|attribuez)\b.{0,60}\b(consignes?|instructions?|note|points?|grille|barème)
    | \b(ignoriere|ignorieren|vergiss|gib|vergeben)\b.{0,60}\b(anweisungen|bewertung|punkte|note|rubrik|volle)
    | \b(ignora|ignore|olvida|dale|otorga|asigna)\b.{0,60}\b(instrucciones|rúbrica|nota|puntos|puntuación|máxima)
    | (忽略|无视|忘记).{0,20}(评分|指令|说明|规则)|(满分|给.{0,6}分|10\s*分)
    )""",
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)
_TURN = re.compile(
    r"^\s*(system|assistant|human)\s*:|<\|?/?\s*(im_start|im_end|endoftext|eot_id|start_header_id)\s*\|?>",
    re.IGNORECASE,
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def content_words(text: str) -> list[str]:
    return [w.lower() for w in words(text) if w.lower() not in STOPWORDS]


_META = frozenset("""question asks asked ask asking answer about explain describe mechanism concept thing things
    topic basically essentially refers term idea means mean use used uses works work stands form forms kind
    type types different difference differ same way ways model models""".split())


_SUFFIX = re.compile(r"(?:ings|ing|ed|es|s|e)$")


def stem(word: str) -> str:
    """A crude stem, enough to see that "scale", "scales" and "scaling" are one word: the first
    five letters once a plural, -ed, -ing or final e is cut off."""
    word = word.lower()
    return (_SUFFIX.sub("", word) if len(word) > 4 else word)[:5]


def novel_words(answer: str, question: str) -> list[str]:
    """Content words of the answer that the question does not already contain."""
    seen = {stem(w) for w in content_words(question)}
    return [w for w in content_words(answer) if stem(w) not in seen and w not in _META]


RESTATED_NEW_WORDS = 3


def restates(answer: str, question: str, reference: str) -> bool:
    """True when the answer adds nothing to the question: at most RESTATED_NEW_WORDS new words,
    none from the reference."""
    novel = novel_words(answer, question)
    known = {stem(w) for w in content_words(reference)}
    return len(novel) <= RESTATED_NEW_WORDS and not any(stem(w) in known for w in novel)


def negations(text: str) -> int:
    """How many negations (not, no, never, n't…) the text has."""
    return len(_NEGATION.findall(text))


def sentences(text: str) -> list[str]:
    return [s.strip(" \t*-•") for s in _SENTENCE.split(text) if s and len(words(s)) > 0]


def segments(text: str) -> list[str]:
    """Sentences, plus the clauses of long sentences: the units a key point can be found in."""
    out: list[str] = []
    for sentence in sentences(text):
        out.append(sentence)
        if len(words(sentence)) > 12:
            clauses = [c.strip() for c in _CLAUSE.split(sentence) if c and len(words(c)) >= 3]
            if len(clauses) > 1:
                out += clauses
    return list(dict.fromkeys(out))


# Sentence-like pieces that keep JSON objects and chat markers whole.
_PIECE_END = r"(?<=[.!?。！？])\s+|\n+"


def split_injections(text: str) -> tuple[str, list[str]]:
    """Remove sentences addressed to the grader. Returns (clean text, removed pieces)."""
    removed, kept = [], []
    pieces = re.split(_PIECE_END, text)
    for i, piece in enumerate(pieces):
        if not piece.strip():
            continue
        if _TURN.search(piece):  # a fake chat turn: everything after it belongs to the injection
            removed += [p.strip() for p in pieces[i:] if p.strip()]
            break
        (removed if _INJECTION.search(piece) else kept).append(piece.strip())
    return " ".join(kept) if removed else text.strip(), removed


REPEAT_MIN_WORDS = 3  # shorter pieces repeat in real answers' notation ("1111 1111. 1111 1111.")
REPEAT_EXTRA_WORDS = 3  # "Again:", "To repeat,", "In other words,"


def without_repeats(text: str) -> tuple[str, list[str]]:
    """Drop each sentence that says an earlier one again word for word (case and punctuation
    aside), or with at most REPEAT_EXTRA_WORDS words around it ("Again: …"): saying a thing twice
    does not say more. Returns (text, the dropped sentences)."""
    parts = re.split(f"({_PIECE_END})", text) + [""]  # piece, separator, piece, separator, …
    said, kept, repeated = [], [], []
    for piece, separator in zip(parts[::2], parts[1::2]):
        piece_words = [w.lower() for w in words(piece)]
        line = f" {' '.join(piece_words)} "
        if any(len(piece_words) - len(earlier) <= REPEAT_EXTRA_WORDS and f" {' '.join(earlier)} " in line
               for earlier in said):
            repeated.append(piece.strip())
            continue
        if len(piece_words) >= REPEAT_MIN_WORDS:
            said.append(piece_words)
        kept.append(piece + separator)
    return ("".join(kept).strip(), repeated) if repeated else (text, [])


# A claim taken back in the same breath states nothing: "…, or maybe not.", "… or perhaps the
# opposite.", or a sentence that only takes back the one before it ("Or maybe not."). An "or not"
# without a comma or a hedge is left alone: real answers ask "whether it has seeds or not".
_HEDGE = r"(?:maybe|perhaps|possibly)"
_TAKEN_BACK = r"(?:not|the\s+opposite|the\s+other\s+way\s+a?round)\W*$"
_RETRACTION = re.compile(rf"^\W*(?:or\s+(?:{_HEDGE}\s+)?|{_HEDGE}\s+){_TAKEN_BACK}", re.IGNORECASE)
_RETRACTED = re.compile(rf"(?:,\s*or\s+(?:{_HEDGE}\s+)?|\bor\s+{_HEDGE}\s+){_TAKEN_BACK}", re.IGNORECASE)


def without_retractions(text: str) -> tuple[str, list[str]]:
    """Drop each sentence the answer takes back: one that ends "…, or maybe not", or one followed by
    a sentence that only takes it back ("Or maybe not."), with that sentence; after a question
    ("Does attention see order? Perhaps not.") such a sentence answers it and both stay. Hedging
    every claim this way kept a strong answer's score. Returns (text, the dropped sentences)."""
    parts = re.split(f"({_PIECE_END})", text) + [""]  # piece, separator, piece, separator, …
    kept, retracted = [], []
    for piece, separator in zip(parts[::2], parts[1::2]):
        answers_question = bool(kept) and kept[-1][0].rstrip().endswith("?")
        if _RETRACTION.match(piece.strip()) and not answers_question:
            retracted += [kept.pop()[0].strip()] if kept else []
            retracted.append(piece.strip())
        elif _RETRACTED.search(piece.strip()):
            retracted.append(piece.strip())
        else:
            kept.append((piece, separator))
    return ("".join(p + s for p, s in kept).strip(), retracted) if retracted else (text, [])


_SENTENCE_END = r"[.!?](?=\s|$)|\n+"  # a sentence end, not the point inside "0.5" or "10.0.0.0"
# What separates the items of a list: commas, semicolons, bullets, slashes, dashes, and sentence
# ends and line breaks ("Word order. Permutation invariance. Sine.": terms dressed as sentences).
_LIST_ITEM = re.compile(rf"[,;|/•]+|\s-\s|{_SENTENCE_END}")


FRAMED_SHARE = 0.75


def unframed(text: str) -> str:
    """The text with the frame its sentences share taken out: "Word order matters here. Sine
    waves matters here. Masking matters here." → "Word order. Sine waves. Masking." A frame is
    the words that at least three sentences, and three in four of them, begin or end with."""
    sents = [words(s) for s in re.split(_SENTENCE_END, text) if words(s)]
    found = False
    for side in (1, -1):  # 1: a shared beginning, -1: a shared ending
        ends = Counter(s[::side][0].lower() for s in sents if len(s) > 1)
        end, n = ends.most_common(1)[0] if ends else ("", 0)
        if n < 3 or n < FRAMED_SHARE * len(sents):
            continue
        framed = [len(s) > 1 and s[::side][0].lower() == end for s in sents]
        frame = len(os.path.commonprefix([[w.lower() for w in s[::side]] for s, f in zip(sents, framed) if f]))
        sents = [s[::side][frame:][::side] if f else s for s, f in zip(sents, framed)]
        found = True
    return " ".join(" ".join(s) + "." for s in sents if s) if found else text


# Words that say nothing about the term they frame: "It involves word order.", "Permutation invariance
# plays a role.", "Another factor is relative position." A short sentence with one of them only names
# its term, however the frames vary from sentence to sentence.
EMPTY_FRAME_WORDS = frozenset("""matter matters involve involves involved role roles play plays part factor
    factors aspect aspects thing things something concept concepts idea ideas think consider remember note
    mention relate relates related important relevant crucial essential central another here too""".split())
EMPTY_FRAME_MAX_WORDS = 8


def _named_term(sentence: str) -> str:
    """A short sentence with an empty frame word cut down to its other content words (a sentence that
    is itself a list is left for the list's own test)."""
    ws = words(sentence)
    if (len(ws) > EMPTY_FRAME_MAX_WORDS or len(_LIST_ITEM.split(sentence)) > 1
            or not any(w.lower() in EMPTY_FRAME_WORDS for w in ws)):
        return sentence
    return " ".join(w for w in content_words(sentence) if w not in EMPTY_FRAME_WORDS)


def without_empty_frames(text: str) -> str:
    """The text with each short sentence that has an empty frame word cut down to the term it names:
    "It involves word order. Think of sine waves." → "word order. sine waves."."""
    sents = [s.strip() for s in re.split(_SENTENCE_END, text) if words(s)]
    bare = [_named_term(s) for s in sents]
    return ". ".join(bare) + "." if bare != sents else text


# An answer of at least FRAGMENTS_MIN sentences, none longer than FRAGMENT_MAX_WORDS words. Terms set in
# frames of any words ("Word order is worth noting. Don't forget permutation invariance. …") read as
# claims to both signals, and so does a terse real answer ("Attention sees all tokens at once. So it
# ignores order. …"): neither the words nor the judge tell them apart. Such grades go to a person. Of
# the 4,086 dev answers, 3 are this short (network addresses listed in SAF).
FRAGMENTS_MIN = 4
FRAGMENT_MAX_WORDS = 7


def fragmented(text: str) -> bool:
    """Whether the answer is a run of short fragments rather than sentences that connect ideas."""
    sents = sentences(text)
    return len(sents) >= FRAGMENTS_MIN and max(len(words(s)) for s in sents) <= FRAGMENT_MAX_WORDS


def looks_like_keyword_list(text: str) -> bool:
    """A bare list of terms, or terms set in frames that say nothing: several short items and no
    real sentence."""
    text = without_empty_frames(unframed(text))
    items = [i.strip() for i in _LIST_ITEM.split(text) if words(i)]
    if len(items) < 4:
        return False
    short = sum(1 for i in items if len(words(i)) <= 3)
    longest = max((len(words(s)) for s in re.split(r"[.!?\n]+", text)), default=0)
    has_sentence = any(len(words(i)) >= 6 and sum(w.lower() in STOPWORDS for w in words(i)) >= 2 for i in items)
    return short >= 0.8 * len(items) and not has_sentence and (longest < 40 or "," in text)
