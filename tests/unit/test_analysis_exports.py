"""The analysis package exports exactly its public API, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

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


def test_importing_the_package_leaves_the_parsers_to_the_child() -> None:
    """A worker imports the package for ``analyze_file``; detection, the encoding guesser and
    the readers load only where a parse runs (the sandbox's child), and ``detect`` stays the
    function once its submodule is loaded."""
    code = (
        "import sys\n"
        "import docmill.documents.analysis as analysis\n"
        "heavy = ('charset_normalizer', 'pypdfium2', 'docx', 'docmill.documents.analysis.detect',\n"
        "         'docmill.documents.analysis.analyze', 'docmill.documents.analysis.child')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "import docmill.documents.analysis.analyze\n"
        "from docmill.documents.analysis import detect\n"
        "print(callable(detect), analysis.detect is detect, detect.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True True docmill.documents.analysis.detect"]
