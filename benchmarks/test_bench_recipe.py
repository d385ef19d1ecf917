"""Wall time of the whole distill-prune-int8 recipe on mnist, against its 10-minute target.

An absolute time says something about one machine only, so it is measured here, not in tests/
(it was ``tests/converters/test_targets.py::test_whole_recipe_within_ten_minutes``). Run with
``.venv/bin/pytest benchmarks/test_bench_recipe.py -s``; it prints the seconds for docs/converters.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TARGET_SECONDS = 600


def test_whole_recipe_within_ten_minutes(tmp_path, capsys):
    from pipeline_fixtures import run_recipe

    run = run_recipe("distill-prune-int8", "cnn", "mnist", tmp_path / "out")
    with capsys.disabled():
        print(f"\ndistill-prune-int8 on mnist: {run.seconds:.1f} s wall (target <= {TARGET_SECONDS} s)")
    assert run.seconds <= TARGET_SECONDS
