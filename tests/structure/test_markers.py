"""Every lint or type exception says which rule it silences and why (issue 27 item 1)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("edge_sdk", "converters", "training", "tests", "benchmarks", "tools", "scripts", "android_demo")
NOQA = re.compile(r"#\s*noqa\b(?P<codes>:\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?(?P<rest>.*)$")
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[a-z0-9,\s-]+\])?(?P<rest>.*)$")


def _python_files():
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" not in path.parts and path != Path(__file__).resolve():  # its examples are bare
                yield path


def _unexplained(lines: list[str], number: int, match: re.Match) -> str | None:
    """Why the marker on line ``number`` (0-based) is not explained, or None."""
    if not match.group("codes"):
        return "names no rule"
    reason = match.group("rest").strip(" -:#")
    if reason:
        return None
    above = lines[number - 1].strip() if number else ""
    return None if above.startswith("#") else "gives no reason (on the line, or in a comment just above)"


def _offenders(pattern: re.Pattern) -> list[str]:
    found = []
    for path in _python_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            match = pattern.search(line)
            if match and (problem := _unexplained(lines, number, match)):
                found.append(f"{path.relative_to(REPO)}:{number + 1}: {problem}: {line.strip()}")
    return found


def test_every_noqa_names_its_rule_and_reason():
    assert _offenders(NOQA) == []


def test_every_type_ignore_names_its_code_and_reason():
    assert _offenders(TYPE_IGNORE) == []


def test_the_check_sees_a_bare_marker(tmp_path):
    lines = ["x = 1", "import os  # noqa: E402", "y = f()  # type: ignore", "z = 2  # noqa"]
    assert _unexplained(lines, 1, NOQA.search(lines[1])) is not None
    assert _unexplained(lines, 2, TYPE_IGNORE.search(lines[2])) == "names no rule"
    assert _unexplained(lines, 3, NOQA.search(lines[3])) == "names no rule"
    explained = ["# numpy's stub is too narrow here", "np.savez(p, **a)  # type: ignore[arg-type]"]
    assert _unexplained(explained, 1, TYPE_IGNORE.search(explained[1])) is None
