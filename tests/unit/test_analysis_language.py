# ruff: noqa: RUF001 - Russian and Ukrainian sample text
"""The offline stopword detector names the language of ordinary business prose."""

from __future__ import annotations

import pytest

from docmill.documents.analysis.language import detect_language

SAMPLES = {
    "en": "The board approved the budget for the new warehouse, and the project will start in the "
    "fourth quarter. It is expected that costs will be lower than in the previous year.",
    "ru": "Совет директоров утвердил бюджет нового склада, и проект начнётся в четвёртом квартале. "
    "Ожидается, что расходы будут ниже, чем в прошлом году, если цены не вырастут.",
    "de": "Der Vorstand hat das Budget für das neue Lager genehmigt, und das Projekt wird im vierten "
    "Quartal beginnen. Es wird erwartet, dass die Kosten niedriger sind als im Vorjahr.",
    "fr": "Le conseil a approuvé le budget pour le nouvel entrepôt et le projet commencera au quatrième "
    "trimestre. Les coûts devraient être plus bas que l'année dernière, selon la direction.",
    "es": "La junta aprobó el presupuesto para el nuevo almacén y el proyecto comenzará en el cuarto "
    "trimestre. Se espera que los costes sean más bajos que el año pasado, según la dirección.",
    "it": "Il consiglio ha approvato il bilancio per il nuovo magazzino e il progetto inizierà nel quarto "
    "trimestre. Si prevede che i costi siano più bassi rispetto all'anno scorso, secondo la direzione.",
    "pt": "O conselho aprovou o orçamento para o novo armazém e o projeto vai começar no quarto "
    "trimestre. Espera-se que os custos sejam mais baixos do que no ano passado, segundo a direção.",
    "nl": "Het bestuur heeft het budget voor het nieuwe magazijn goedgekeurd en het project begint in het "
    "vierde kwartaal. Er wordt verwacht dat de kosten lager zijn dan vorig jaar, volgens de directie.",
    "uk": "Рада директорів затвердила бюджет нового складу, і проєкт почнеться в четвертому кварталі. "
    "Очікується, що витрати будуть нижчими, ніж у минулому році, але це ще не точно.",
}


@pytest.mark.parametrize(("code", "text"), sorted(SAMPLES.items()))
def test_each_covered_language_is_detected(code: str, text: str) -> None:
    language = detect_language(text)
    assert language.code == code
    assert 0.3 <= language.confidence <= 1.0


@pytest.mark.parametrize("text", ["", "Hello", "12345 678 910", "Q3 EBITDA KPI ROI"])
def test_too_little_evidence_gives_undetermined(text: str) -> None:
    language = detect_language(text)
    assert (language.code, language.confidence) == ("und", 0.0)


def test_the_majority_language_wins_in_a_mixed_document() -> None:
    text = SAMPLES["ru"] * 5 + SAMPLES["en"]
    assert detect_language(text).code == "ru"
