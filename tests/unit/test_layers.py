"""The layer rules of DESIGN.md §1, checked on the source: imports only go downward.

    cli/  web/          may import anything below (and each other)
    config/ documents/  the application: must not import cli/ or web/ (config builds every
                        layer's settings; the pipeline's worker start-up reads it)
    llm/  supervisor/   import only queue/ (and themselves)
    queue/              imports nothing else from docmill

Every module under ``src/docmill`` is parsed (not imported), so the rules hold
for packages that do not exist yet the moment they appear. Imports under
``if TYPE_CHECKING:`` count too: a type from an upper layer is still a
dependency on it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "docmill"
ADAPTERS = frozenset({"cli", "web"})
# `python -m docmill` is the console script by another name: it sits above the adapters.
ENTRY_POINTS = frozenset({"__main__"})


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    target: str  # absolute dotted module name, e.g. "docmill.queue.job"

    @property
    def layer(self) -> str | None:
        """The top-level part of docmill imported ("queue", "cli", ...); "" for docmill itself."""
        parts = self.target.split(".")
        if parts[0] != "docmill":
            return None
        return parts[1] if len(parts) > 1 else ""

    def __str__(self) -> str:
        return f"{self.path.relative_to(SRC)}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(path: Path, source: str | None = None) -> Iterator[Import]:
    """Every docmill module ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield Import(path, node.lineno, module)
            # "from docmill import cli" imports the cli package itself.
            for alias in node.names:
                yield Import(path, node.lineno, f"{module}.{alias.name}")


def layer_of(path: Path) -> str:
    """The top-level part of docmill a file belongs to: "queue", "cli", "demo_jobs", ""."""
    parts = path.relative_to(PACKAGE).parts
    return "" if parts == ("__init__.py",) else parts[0].removesuffix(".py")


def allowed(importer: str, imported: str) -> bool:
    """Whether code in layer ``importer`` may import docmill layer ``imported``."""
    if imported == importer:
        return True
    if importer == "queue":
        return False
    if importer in {"supervisor", "llm"}:
        return imported == "queue"
    if imported in ADAPTERS:
        return importer in ADAPTERS or importer in ENTRY_POINTS
    return True


def violations(paths: list[Path], sources: dict[Path, str] | None = None) -> list[str]:
    found = []
    for path in paths:
        importer = layer_of(path)
        for imp in imports_in(path, (sources or {}).get(path)):
            if imp.layer is not None and not allowed(importer, imp.layer):
                found.append(str(imp))
    return sorted(set(found))


def sources_of(layer: str | None = None) -> list[Path]:
    paths = sorted(PACKAGE.rglob("*.py"))
    return [p for p in paths if layer is None or layer_of(p) == layer]


def test_the_source_tree_is_where_the_rules_look() -> None:
    assert (PACKAGE / "queue" / "backend.py") in sources_of("queue")


@pytest.mark.parametrize("layer", ["queue", "supervisor", "llm", "documents", "config"])
def test_lower_layers_import_only_what_is_below_them(layer: str) -> None:
    assert violations(sources_of(layer)) == []


def test_nothing_but_the_adapters_imports_cli_or_web() -> None:
    offenders = [p for p in sources_of() if layer_of(p) not in ADAPTERS]

    assert violations(offenders) == []


# The checker itself, on made-up sources, so a green run means something.


@pytest.mark.parametrize(
    ("file", "source"),
    [
        ("queue/worker.py", "from docmill.documents import models"),
        ("queue/worker.py", "import docmill.cli.main"),
        ("queue/worker.py", "from docmill import supervisor"),
        ("queue/worker.py", "from docmill import __version__"),
        ("queue/worker.py", "import docmill"),
        ("queue/backends/redis.py", "from ...llm import limiter"),
        ("supervisor/pool.py", "from docmill.documents.jobs import analyze"),
        ("supervisor/pool.py", "from docmill.llm import limits"),
        ("supervisor/config.py", "from docmill.config import load"),
        ("queue/worker_main.py", "from docmill.config.loader import load"),
        ("config/loader.py", "from docmill.cli._common import fail"),
        ("llm/anthropic.py", "from ..supervisor import pool"),
        ("documents/jobs.py", "from docmill.web.deps import settings"),
        ("documents/jobs.py", "def f():\n    from docmill.cli import main"),
        ("demo_jobs.py", "from docmill.cli.main import app"),
        ("documents/jobs.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import docmill.web"),
    ],
)
def test_the_checker_reports_an_upward_import(file: str, source: str) -> None:
    path = PACKAGE / file

    assert len(violations([path], {path: source})) >= 1


@pytest.mark.parametrize(
    ("file", "source"),
    [
        ("queue/worker.py", "from docmill.queue.job import Job\nfrom . import lease\nimport asyncio"),
        ("queue/backends/redis.py", "from ..backend import Backend\nfrom .. import errors"),
        ("supervisor/pool.py", "from docmill.queue import Client\nfrom .states import State"),
        ("llm/anthropic.py", "from docmill.queue import Release"),
        ("documents/jobs.py", "from docmill.llm import limiter\nfrom docmill.supervisor import pool"),
        ("cli/serve.py", "from docmill.web.app import create_app\nfrom docmill.documents import jobs"),
        ("web/app.py", "from docmill.cli._common import console"),
    ],
)
def test_the_checker_accepts_a_downward_import(file: str, source: str) -> None:
    path = PACKAGE / file

    assert violations([path], {path: source}) == []
