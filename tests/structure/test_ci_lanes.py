"""CI runs the lanes that rot unseen otherwise (issue 26 section 6)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ci_runs_the_tflite_runtime_lane_after_the_suite():
    steps = [
        line.strip()
        for line in (REPO / ".ci/run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "make test" in steps and "make test-tflite-runtime" in steps
    assert steps.index("make test-tflite-runtime") > steps.index("make test")


def test_ci_runs_the_second_python_lane_after_the_suite():
    # issue 27 item 2: the runtime proven on other Python versions than the machine's 3.11
    steps = [
        line.strip()
        for line in (REPO / ".ci/run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    lane = [s for s in steps if s.endswith("make test-python-versions")]
    assert lane and steps.index(lane[0]) > steps.index("make test")
    assert 'DEFAULT_VERSIONS="3.12 3.13"' in (REPO / "scripts/python-versions/lane.sh").read_text()


def test_the_docs_say_when_the_arm64_lane_must_be_run():
    text = (REPO / "docs/benchmarks.md").read_text()
    assert "When `make test-arm64` must be run" in text
