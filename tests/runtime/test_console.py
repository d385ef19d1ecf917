"""edge_sdk.console: the console helpers every command and library layer shares."""

import io

import pytest

from edge_sdk import console


def test_first_line_takes_the_first_non_empty_line_or_the_type_name():
    assert console.first_line(RuntimeError("  top line\nstack frame 1\nstack frame 2")) == "top line"
    assert console.first_line(ValueError("")) == "ValueError"
    assert console.first_line(OSError("x" * 500), 300) == "x" * 300


def test_progress_bar_is_none_when_stderr_is_not_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a log file or a pipe: no carriage-return frames
    assert console.progress_bar(10, "work") is None
    assert console.progress(range(3), "work") is not None  # the iterable still iterates
    assert list(console.progress(range(3), "work")) == [0, 1, 2]
