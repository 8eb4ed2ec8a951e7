"""The image's build context as a container builder sees it, and the Dockerfile's steps.

``.dockerignore`` is applied with the builders' rules (moby/patternmatcher, used by docker,
BuildKit and buildah/podman): patterns in order, the last one that matches a path or one of
its parent directories decides, ``!`` lets a path back in, ``*`` and ``?`` stay within one
path segment, ``**`` spans any number of them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class IgnorePattern:
    text: str
    exclusion: bool  # a "!" line: lets matching paths back in
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None


def compile_pattern(line: str) -> IgnorePattern | None:
    """One line of .dockerignore as a pattern; None for a comment or a blank line."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    exclusion = text.startswith("!")
    if exclusion:
        text = text[1:].strip()
    text = os.path.normpath(text).lstrip("/") if text not in ("", ".") else "."
    regex, i = "", 0
    while i < len(text):
        char = text[i]
        if text.startswith("**", i):
            i += 2
            if text.startswith("/", i):
                i += 1
                regex += "(?:.*/)?"
            else:
                regex += ".*"
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = text.find("]", i + 1)
            if end == -1:
                raise ValueError(f".dockerignore: unclosed [ in {line!r}")
            body = text[i + 1 : end]
            regex += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        elif char == "\\" and i + 1 < len(text):
            i += 1
            regex += re.escape(text[i])
        else:
            regex += re.escape(char)
        i += 1
    return IgnorePattern(text, exclusion, re.compile(regex))


def read_dockerignore(path: Path) -> list[IgnorePattern]:
    if not path.exists():
        return []
    return [p for p in map(compile_pattern, path.read_text().splitlines()) if p is not None]


def is_excluded(path: str, patterns: Iterable[IgnorePattern]) -> bool:
    """Whether the builder leaves ``path`` (relative, with "/") out of the context."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        if pattern.exclusion != excluded:
            continue  # only a "!" pattern can change an excluded path, and only a plain one a kept path
        if any(pattern.matches(prefix) for prefix in prefixes):
            excluded = not pattern.exclusion
    return excluded


def checkout_files(root: Path = ROOT) -> list[str]:
    """The files a fresh clone of ``root`` has once the work in progress is committed: the
    tracked ones and the untracked ones git does not ignore (and that still exist)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def tree_files(root: Path = ROOT, patterns: list[IgnorePattern] | None = None) -> list[str]:
    """The files under ``root`` that the build context keeps, walking the tree itself (no git).
    A directory the patterns exclude is not entered unless a "!" pattern may let something
    under it back in."""
    patterns = read_dockerignore(root / ".dockerignore") if patterns is None else patterns
    lets_back = [p.text for p in patterns if p.exclusion]
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder).relative_to(root).as_posix()
        prefix = "" if here == "." else here + "/"
        dirs[:] = [
            d
            for d in dirs
            if not is_excluded(prefix + d, patterns)
            or any(text.startswith(prefix + d + "/") or "*" in text for text in lets_back)
        ]
        found += [prefix + f for f in files if not is_excluded(prefix + f, patterns)]
    return sorted(found)


def context_files(root: Path = ROOT) -> list[str]:
    """The files of a clean clone's build context: the checkout's files minus .dockerignore."""
    patterns = read_dockerignore(root / ".dockerignore")
    return [name for name in checkout_files(root) if not is_excluded(name, patterns)]


def copy_context(dest: Path, root: Path = ROOT) -> list[str]:
    files = context_files(root)
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return files


def dockerfile_steps(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments out."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending)
    steps = []
    for line in lines:
        kind, _, rest = line.partition(" ")
        steps.append((kind.upper(), " ".join(rest.split())))
    return steps


def env_assignments(arguments: str) -> dict[str, str]:
    """The variables of one ENV instruction in its KEY=value form (values unquoted)."""
    import shlex

    values = {}
    for word in shlex.split(arguments):
        key, eq, value = word.partition("=")
        if not eq:
            raise ValueError(f"ENV {arguments!r}: only the KEY=value form is read")
        values[key] = value
    return values
