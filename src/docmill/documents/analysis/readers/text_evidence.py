"""What a line of plain text says about itself: its numbering, and whether it cannot be a heading.

Plain text has no markup, so a heading is recognised by evidence in the line alone:

- a numbering scheme: ``2.``, ``2.1``, ``2.1.3. Title`` (depth = parts), ``A.1 Title``
  (an appendix, depth 2), ``Chapter 3``, ``Глава 12``, ``Appendix B`` (a chapter), ``Part II``,
  ``Часть 2`` (above chapters);
- capitals (``INSTALLATION``) or a short title-like line standing alone, which say nothing
  about the level.

Some lines look like headings but never are: command output and key/value pairs
(``Consistency Policy : resync``, ``State = clean``, ``$ mdadm --detail``), navigation
left behind by a web page (``Download the ebook``, ``Next »``, ``Назад``), and table of
contents entries (``1.2 Setup ........ 14``). ``text_headings`` weighs this evidence over
the whole document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADING_CHARS = 90
MAX_HEADING_WORDS = 12
_TERMINAL = (".", ",", ";", ":", "!", "?", "…")

_NUMBERED = re.compile(r"^((?:\d{1,3}|[A-Z\u0410-\u042f](?=\.\d))(?:\.\d{1,3}){0,5})(\.?)[ \t]+(\S.*)$")
_CHAPTER = re.compile(
    r"^(?P<word>part|book|часть|книга|chapter|appendix|глава|приложение)[ \t]+"
    r"(?P<number>\d{1,3}|[IVXLC]{1,7}|[A-Z\u0410-\u042f])\b\.?"
    r"(?:[ \t]*[.:\u2014\u2013-]?[ \t]*(?P<title>\S.*))?$",
    re.IGNORECASE,
)
_ABOVE_CHAPTER = frozenset({"part", "book", "часть", "книга"})
# Dot leaders or a wide gap before a page number: "1.2 Setup ....... 14", "Setup      14".
_PAGE_REFERENCE = re.compile(r"(?:\.{3,}|…{2,}|[ \t]{3,}|\t)[ \t]*\d{1,4}$|[ \t]\.{2,}[ \t]*\d{1,4}$")
_PROMPT = re.compile(r"^(?:\$|#|>>>|>|%|PS [A-Z]:\\|[A-Z]:\\|[\w.-]+@[\w.-]+[:~])[ \t]")
_KEY_VALUE = re.compile(r"^[^\s:=][^:=]{0,60}?[ \t]*(?:[ \t]:|:[ \t]|=)[ \t]*\S")
_CODE_CHARACTERS = frozenset("{}[]<>|=$\\@`;")
_ARROWS = frozenset("«»←→↑↓⇐⇒▲▼►◄")
_TOC_HEADERS = frozenset(
    {"contents", "table of contents", "содержание", "оглавление", "содержание главы", "в этой главе"}
)
_NAVIGATION = frozenset(
    {
        "next", "previous", "prev", "back", "back to top", "top", "up", "home", "index", "print",
        "share", "menu", "skip to content", "skip to main content", "download", "download pdf",
        "download the ebook", "download ebook", "download the book", "read online", "buy the book",
        "назад", "вперёд", "вперед", "далее", "дальше", "наверх", "в начало", "на главную", "главная",
        "предыдущая", "следующая", "печать", "поделиться", "меню", "скачать", "скачать книгу",
        "скачать pdf", "скачать электронную книгу", "читать онлайн", "купить книгу",
    }
)  # fmt: skip
_NAVIGATION_PREFIXES = ("download ", "скачать ", "next:", "previous:", "далее:", "назад:")
_PAGE_OF = re.compile(r"^(?:page|страница|стр\.)\s*\d+\s*(?:of|из|/)\s*\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class Numbering:
    """A heading's numbering: its ``rank`` orders schemes (lower is higher in the tree)."""

    rank: tuple[int, int]
    number: str  # "12", "12.1", "A.1", "III": how the heading counts itself
    chapter: bool = False  # numbered by a word (Chapter 3, Глава 12), not by digits alone


def words(text: str) -> int:
    return len(text.split())


def without_page_reference(line: str) -> str:
    """A TOC entry without its dot leaders and page number: ``1.2 Setup ..... 14`` -> ``1.2 Setup``."""
    return _PAGE_REFERENCE.sub("", line.strip()).rstrip(" .")


def normalise(text: str) -> str:
    """Case- and space-insensitive form of a line, for comparing headings with their TOC entries."""
    return " ".join(without_page_reference(text).casefold().split())


def numbering(line: str) -> Numbering | None:
    """The numbering scheme of a heading-shaped line, or ``None`` when it is not numbered."""
    text = line.strip()
    if len(text) > MAX_HEADING_CHARS:
        return None
    chapter = _CHAPTER.match(text)
    if chapter:
        title = chapter.group("title") or ""
        if title and (not _title_shaped(title) or words(title) > MAX_HEADING_WORDS):
            return None
        word = chapter.group("word").casefold()
        rank = (0, 0) if word in _ABOVE_CHAPTER else (1, 1)
        return Numbering(rank, chapter.group("number").upper(), chapter=True)
    match = _NUMBERED.match(text)
    if not match:
        return None
    title = match.group(3)
    if not _title_shaped(title) or words(title) > MAX_HEADING_WORDS:
        return None
    return Numbering((1, match.group(1).count(".") + 1), match.group(1))


def _title_shaped(title: str) -> bool:
    first = title[0]
    return (first.isupper() or first.isdigit() or first in "\"'«“(") and not title.rstrip().endswith(
        _TERMINAL[:3]
    )


def is_capitals(line: str) -> bool:
    """An all-capitals line of a few words (``INSTALLATION``, ``НАСТРОЙКА RAID``)."""
    text = line.strip()
    letters = [ch for ch in text if ch.isalpha()]
    return (
        len(letters) >= 3
        and all(ch.isupper() for ch in letters)
        and words(text) <= MAX_HEADING_WORDS
        and len(text) <= MAX_HEADING_CHARS
        and not text.endswith(_TERMINAL[1:3])
    )


def is_title_like(line: str) -> bool:
    """A short line shaped like a title: a capital first, few words, no closing punctuation."""
    text = line.strip()
    return (
        bool(text)
        and text[0].isupper()
        and len(text) <= 60
        and 1 <= words(text) <= 8
        and not text.endswith(_TERMINAL)
        and not text.startswith(("-", "*", "•"))
    )


def is_toc_header(line: str) -> bool:
    return normalise(line).rstrip(":") in _TOC_HEADERS


def has_page_reference(line: str) -> bool:
    """A line ending with a page number after dot leaders or a gap, as TOC entries do."""
    return bool(_PAGE_REFERENCE.search(line.rstrip())) and bool(re.search(r"[^\W\d_]", line))


def is_navigation(line: str) -> bool:
    text = normalise(line).strip(" :|")
    return (
        text in _NAVIGATION
        or text.startswith(_NAVIGATION_PREFIXES)
        or bool(_PAGE_OF.match(text))
        or any(ch in _ARROWS for ch in line)
    )


def is_machine_output(raw_line: str) -> bool:
    """Command lines and their output, code, and key/value pairs: text, never a heading."""
    if raw_line[:1] == "\t" or raw_line.startswith("    "):
        return True
    text = raw_line.strip()
    if _PROMPT.match(text) or text.startswith(("/", "./", "~/", "-")):
        return True
    if _KEY_VALUE.match(text) or "_" in text or "://" in text or any(ch in _CODE_CHARACTERS for ch in text):
        return True
    body = _NUMBERED.sub(r"\3", text).replace(" ", "")
    letters = sum(1 for ch in body if ch.isalpha())
    return letters < 0.5 * len(body)  # mostly digits and signs: a table row, a size, a count


def never_heading(raw_line: str, *, numbered: bool) -> bool:
    """Lines that may look like headings but are machine output, navigation or TOC entries.

    A numbered line (``1.2. Setup``, ``Глава 12: RAID``) has shown its evidence already; it is
    refused only as a TOC entry or when it sits in indented or prompted output.
    """
    if has_page_reference(raw_line):
        return True
    if numbered:
        text = raw_line.strip()
        return raw_line[:1] == "\t" or raw_line.startswith("    ") or bool(_PROMPT.match(text))
    return is_machine_output(raw_line) or is_navigation(raw_line) or is_toc_header(raw_line)
