# ruff: noqa: RUF001 - the stopword lists are Cyrillic on purpose
"""Offline language detection by stopword frequency.

Each language has a list of its most frequent function words. The text's words (up to
``MAX_WORDS``, taken from the start, middle and end) are looked up in every list; the
language whose words make up the largest share wins. The script decides first which
lists compete, so Cyrillic text is only ever Russian or Ukrainian.

``confidence`` is the winner's share of all stopword hits (1.0 when no other language
matched anything). Fewer than ``MIN_HITS`` hits, or hits under ``MIN_SHARE`` of the
words, give ``und`` (undetermined): short or unusual texts are not guessed at.

Covers en, ru, uk, de, fr, es, it, pt, nl.
"""

from __future__ import annotations

import re

from docmill.documents.analysis.model import Language

MAX_WORDS = 20_000
MIN_HITS = 3
MIN_SHARE = 0.04
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?")

STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the of and to in is that for it as with was on be by this are at from or an have not "
        "which but has they you we their will can were been more one all there would its also he "
        "she his her than our these any may should",
        "ru": "и в не на что с по как это он она они к из за от для то же так но а мы вы его ее её "
        "их бы был была были было быть есть или если уже только также при о об до после все всё "
        "этот эта эти который которые которая чтобы когда где там",
        "uk": "і та що не на в з до як це для за від але його її їх вони ми ви був була було були "
        "бути також які який яка щоб коли де там тому після між або вже є цей ця ці",
        "de": "der die das und ist nicht ein eine einen einem einer zu den dem des mit von im auf für "
        "sich auch es sind wird werden als bei aus nach oder wie wir sie ich nur noch über um dass "
        "kann haben hat war",
        "fr": "le la les et des est une un du que qui dans pour pas sur au aux ce cette avec sont ne se "
        "par plus nous vous il elle ils leur été être ou mais comme tout fait peut ses son sa entre",
        "es": "el la los las y de que en un una es por con para no se del al lo como más pero sus su "
        "le ha son este esta está están también muy sobre entre cuando donde todo ya hay fue ser",
        "it": "il lo la i gli le e di che un una è per non con del della dei delle nel nella sono da "
        "al alla come più ma anche questo questa ha si sua suo loro essere stato tra quando dove",
        "pt": "o a os as e de que do da dos das em um uma é para com não no na nos nas por mais mas se "
        "como ao sua seu foi são está também muito entre quando onde ser pelo pela isso este esta",
        "nl": "de het een en van is dat in op te niet met voor zijn er aan ook als bij door maar om "
        "naar nog dan wordt worden kan hij zij wij ze deze dit die uit over heeft hebben werd tot",
    }.items()
}
_CYRILLIC_LANGS = ("ru", "uk")


def _sample_words(text: str) -> list[str]:
    """Up to ``MAX_WORDS`` words, from the start, the middle and the end of long texts."""
    window = 60_000
    if len(text) > 3 * window:
        middle = len(text) // 2
        text = "\n".join((text[:window], text[middle : middle + window], text[-window:]))
    return [word.lower() for word in _WORD.findall(text)[:MAX_WORDS]]


def detect_language(text: str) -> Language:
    """Guess the main language of ``text``; ``Language("und", 0.0)`` when unsure."""
    words = _sample_words(text)
    if not words:
        return Language("und", 0.0)
    cyrillic = sum(1 for word in words if "\u0400" <= word[0] <= "\u04ff")
    candidates = (
        _CYRILLIC_LANGS
        if cyrillic * 2 > len(words)
        else tuple(k for k in STOPWORDS if k not in _CYRILLIC_LANGS)
    )
    hits = {lang: sum(1 for word in words if word in STOPWORDS[lang]) for lang in candidates}
    best = max(hits, key=lambda lang: hits[lang])
    total = sum(hits.values())
    if hits[best] < MIN_HITS or hits[best] / len(words) < MIN_SHARE:
        return Language("und", 0.0)
    return Language(best, round(hits[best] / total, 3))
