# ruff: noqa: RUF001 - Russian sample text
"""Plain-text headings from evidence: numbering decides levels; TOCs, output and navigation are text."""

from __future__ import annotations

import pytest

from docmill.documents.analysis.analyze import analyze_bytes
from docmill.documents.analysis.readers import text_evidence as evidence
from docmill.documents.analysis.readers.text import read_text


def headings(text: str) -> list[tuple[int, str]]:
    return [(block.level, block.text) for block in read_text(text).blocks if block.kind == "heading"]


# ---------------------------------------------------------------- numbering decides the level


@pytest.mark.parametrize(
    ("line", "depth"),
    [
        ("1. Introduction", 1),
        ("1.2. Настройка", 2),
        ("3.1.4 Scope of work", 3),
        ("A.1 Glossary", 2),
        ("Б.2 Словарь", 2),
        ("Chapter 3", 1),
        ("Chapter 3: Storage", 1),
        ("Глава 12. Программный RAID", 1),
        ("Appendix B. Tables", 1),
        ("Приложение А", 1),
    ],
)
def test_numbering_schemes_are_recognised(line: str, depth: int) -> None:
    numbered = evidence.numbering(line)
    assert numbered is not None
    assert numbered.rank[1] == depth


@pytest.mark.parametrize(
    "line",
    [
        "1. install the package",
        "2. Run the tests.",
        "12 items were processed",
        "Chapter and verse",
        "A. Smith",
    ],
)
def test_sentences_and_list_items_are_not_numbered_headings(line: str) -> None:
    assert evidence.numbering(line) is None


def test_chapter_words_and_numbers_share_the_top_level_in_english() -> None:
    text = (
        "Chapter 3. Storage\n\nIntro.\n\n3.1 Disks\n\nText.\n\n3.1.1 Spares\n\nText.\n\n3.2 Arrays\n\nText."
    )
    assert headings(text) == [
        (1, "Chapter 3. Storage"),
        (2, "3.1 Disks"),
        (3, "3.1.1 Spares"),
        (2, "3.2 Arrays"),
    ]


def test_chapter_words_and_numbers_share_the_top_level_in_russian() -> None:
    text = "Глава 12. RAID\n\nВведение.\n\n12.1. Уровни\n\nТекст.\n\n12.2. Настройка\n\nТекст."
    assert headings(text) == [(1, "Глава 12. RAID"), (2, "12.1. Уровни"), (2, "12.2. Настройка")]


def test_sections_numbered_afresh_inside_chapters_go_below_them() -> None:
    text = "Chapter 2\n\nText.\n\n1. Scope\n\nText.\n\n2. Terms\n\nText.\n\nChapter 3\n\n1. Methods\n\nText."
    assert headings(text) == [
        (1, "Chapter 2"),
        (2, "1. Scope"),
        (2, "2. Terms"),
        (1, "Chapter 3"),
        (2, "1. Methods"),
    ]


def test_parts_sit_above_chapters() -> None:
    text = "Часть 1. Основы\n\nТекст.\n\nГлава 1. Диски\n\nТекст.\n\n1.1. Разделы\n\nТекст."
    assert headings(text) == [(1, "Часть 1. Основы"), (2, "Глава 1. Диски"), (3, "1.1. Разделы")]


def test_appendix_numbers_nest_like_digits() -> None:
    text = "1. Body\n\nText.\n\nA.1 Glossary\n\nTerms.\n\nA.2 Sources\n\nBooks."
    assert headings(text) == [(1, "1. Body"), (2, "A.1 Glossary"), (2, "A.2 Sources")]


def test_capitals_in_a_numbered_document_are_subsections_not_chapters() -> None:
    text = (
        "Глава 12. RAID\n\nТекст.\n\n12.1. Уровни\n\nТекст.\n\nRAID-0\n\nБез избыточности.\n\n"
        "12.2. Настройка\n\nТекст."
    )
    assert headings(text) == [
        (1, "Глава 12. RAID"),
        (2, "12.1. Уровни"),
        (3, "RAID-0"),
        (2, "12.2. Настройка"),
    ]


def test_title_like_lines_in_a_numbered_document_stay_text() -> None:
    text = "1. Setup\n\nText.\n\nActive Devices\n\n2. Checks\n\nText."
    assert headings(text) == [(1, "1. Setup"), (1, "2. Checks")]


def test_without_numbering_capitals_and_lone_titles_are_headings() -> None:
    text = (
        "How to start.\n\nINSTALLATION\n\nRun the installer.\n\nFirst steps\n\nOpen the app.\n\n"
        "НАСТРОЙКА\n\nТекст.\n\nПервый запуск\n\nТекст."
    )
    assert headings(text) == [(1, "INSTALLATION"), (2, "First steps"), (1, "НАСТРОЙКА"), (2, "Первый запуск")]


def test_numbered_lists_are_not_headings() -> None:
    assert headings("Steps:\n\n1. Open the box\n2. Check the contents\n3. Sign the note") == []
    assert headings("Шаги:\n\n1. Откройте коробку\n2. Проверьте содержимое") == []


# ---------------------------------------------------------------- lines that are never headings


@pytest.mark.parametrize(
    "line",
    [
        "Consistency Policy : resync",
        "State : clean",
        "Active Devices: 2",
        "Состояние : чистый",
        "Size = 512",
        "$ mdadm --detail /dev/md0",
        "# mdadm --create /dev/md0",
        "    Number   Major   Minor   RaidDevice State",
        "md0 : active raid1 sdb1[1] sda1[0]",
        "/dev/sda1",
        "MY_VARIABLE",
        "1024 512 0 1",
    ],
)
def test_command_output_and_key_values_are_not_headings(line: str) -> None:
    assert evidence.never_heading(line, numbered=False)
    assert headings(f"Intro text.\n\n{line}\n\nMore text.") == []


@pytest.mark.parametrize(
    "line",
    [
        "Download the ebook",
        "Скачать книгу",
        "Next »",
        "« Previous",
        "Назад",
        "Далее",
        "Back to top",
        "Page 3 of 10",
    ],
)
def test_navigation_lines_are_not_headings_nor_the_title(line: str) -> None:
    parsed = read_text(f"{line}\n\nSome words here.\n\nINSTALLATION\n\nRun it.")
    assert [(block.level, block.text) for block in parsed.blocks if block.kind == "heading"] == [
        (1, "INSTALLATION")
    ]
    assert parsed.title == "INSTALLATION"


@pytest.mark.parametrize("line", ["Installation", "Storage Guide", "Настройка массива", "RAID-0", "RAID-10"])
def test_ordinary_titles_pass_the_filters(line: str) -> None:
    assert not evidence.never_heading(line, numbered=False)


# ---------------------------------------------------------------- tables of contents


def test_a_contents_block_with_page_numbers_is_text() -> None:
    text = (
        "Contents\n\n1. Introduction ........ 3\n2. Installation ........ 7\n2.1 Requirements ..... 8\n\n"
        "1. Introduction\n\nWelcome.\n\n2. Installation\n\nSteps.\n\n2.1 Requirements\n\nDisks."
    )
    assert headings(text) == [(1, "1. Introduction"), (1, "2. Installation"), (2, "2.1 Requirements")]
    assert "1. Introduction ........ 3" in read_text(text).blocks[0].text


def test_a_contents_block_without_page_numbers_ends_where_its_first_entry_returns() -> None:
    text = (
        "Содержание\n\nГлава 1. Диски\n\n1.1. Разделы\n\nГлава 2. Сеть\n\n"
        "Глава 1. Диски\n\nТекст.\n\n1.1. Разделы\n\nТекст.\n\nГлава 2. Сеть\n\nТекст."
    )
    assert headings(text) == [(1, "Глава 1. Диски"), (2, "1.1. Разделы"), (1, "Глава 2. Сеть")]


def test_a_contents_line_without_entries_after_it_is_only_a_line() -> None:
    text = "Contents\n\nThe crate holds twelve parts.\n\n1. Assembly\n\nBolt them.\n\n2. Care\n\nOil them."
    assert headings(text) == [(1, "1. Assembly"), (1, "2. Care")]


def test_toc_entries_with_page_numbers_end_where_the_first_returns() -> None:
    text = (
        "Оглавление\n\nГлава 1. Диски ........ 3\n1.1. Разделы ........ 4\n\n"
        "Глава 1. Диски\n\nТекст.\n\n1.1. Разделы\n\nТекст."
    )
    assert headings(text) == [(1, "Глава 1. Диски"), (2, "1.1. Разделы")]
    assert read_text(text).blocks[0].text.splitlines() == [
        "Оглавление",
        "Глава 1. Диски ........ 3",
        "1.1. Разделы ........ 4",
    ]


def test_a_run_of_headings_repeated_later_is_a_contents_list() -> None:
    text = (
        "1. Scope\n\n2. Terms\n\n3. Methods\n\n1. Scope\n\nText.\n\n2. Terms\n\nText.\n\n3. Methods\n\nText."
    )
    assert headings(text) == [(1, "1. Scope"), (1, "2. Terms"), (1, "3. Methods")]


# ---------------------------------------------------------------- a whole export

HANDBOOK = """\
Download the ebook

Глава 12. Программный RAID

Содержание

12.1. Уровни RAID
12.2. Настройка массива
12.3. Наблюдение за массивом

12.1. Уровни RAID

Программный RAID объединяет несколько дисков в один массив.

RAID-0

Данные распределяются по дискам без избыточности.

RAID-1

Каждый блок записывается на оба диска.

12.2. Настройка массива

Создайте массив командой mdadm:

    # mdadm --create /dev/md0 --level=1 --raid-devices=2 /dev/sda1 /dev/sdb1

Проверьте его состояние:

Consistency Policy : resync

State : clean

Active Devices

12.3. Наблюдение за массивом

Файл /proc/mdstat показывает состояние всех массивов.

Назад

Далее
"""


def test_a_handbook_chapter_exported_as_text_gives_the_exact_tree() -> None:
    structure = analyze_bytes(HANDBOOK.encode(), filename="raid.txt")
    assert structure.title == "Глава 12. Программный RAID"
    assert [(section.level, section.heading_path) for section in structure.all_sections()] == [
        (0, []),
        (1, ["Глава 12. Программный RAID"]),
        (2, ["Глава 12. Программный RAID", "12.1. Уровни RAID"]),
        (3, ["Глава 12. Программный RAID", "12.1. Уровни RAID", "RAID-0"]),
        (3, ["Глава 12. Программный RAID", "12.1. Уровни RAID", "RAID-1"]),
        (2, ["Глава 12. Программный RAID", "12.2. Настройка массива"]),
        (2, ["Глава 12. Программный RAID", "12.3. Наблюдение за массивом"]),
    ]
    assert structure.counts.sections == 6
