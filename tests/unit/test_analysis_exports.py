"""The analysis package exports exactly its public API, and every name resolves."""

from __future__ import annotations

import docmill.documents.analysis as analysis


def test_every_exported_name_exists_and_nothing_private_is_exported() -> None:
    assert sorted(analysis.__all__) == analysis.__all__
    for name in analysis.__all__:
        assert hasattr(analysis, name), name
        assert not name.startswith("_")


def test_the_error_tree_has_one_root() -> None:
    assert issubclass(analysis.AnalysisFailed, analysis.AnalysisError)
    failure = analysis.AnalysisFailed(analysis.FailureCode.EMPTY, "The file is empty.")
    assert (failure.code, failure.reason, str(failure)) == (
        "empty",
        "The file is empty.",
        "The file is empty.",
    )
