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


def looks_like_keyword_list(text: str) -> bool:
    """A bare list of terms, or terms each set in one frame: several short items and no real sentence."""
    text = unframed(text)
    items = [i.strip() for i in _LIST_ITEM.split(text) if words(i)]
    if len(items) < 4:
        return False
    short = sum(1 for i in items if len(words(i)) <= 3)
    longest = max((len(words(s)) for s in re.split(r"[.!?\n]+", text)), default=0)
    has_sentence = any(len(words(i)) >= 6 and sum(w.lower() in STOPWORDS for w in words(i)) >= 2 for i in items)
    return short >= 0.8 * len(items) and not has_sentence and (longest < 40 or "," in text)
