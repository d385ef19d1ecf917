"""benchmarks/distill_trial.py: the paired multi-seed distillation trial (statistics and a short real run)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_trial.py"
_spec = importlib.util.spec_from_file_location("distill_trial", _PATH)
trial = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(trial)


def test_seed_lists():
    assert trial.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert trial.parse_seeds("3,7,10-11") == [3, 7, 10, 11]


def test_t_interval_and_verdict():
    # mean 0.5, sd sqrt(0.02 / 3), n 4: half-width t(0.975, 3) * sd / sqrt(4)
    interval = trial.t_interval([0.4, 0.5, 0.6, 0.5])
    assert interval["mean"] == pytest.approx(0.5)
    assert interval["high"] - interval["mean"] == pytest.approx(3.1824 * (0.02 / 3) ** 0.5 / 2, rel=1e-3)
    assert trial.verdict(interval) == "better"
    assert trial.verdict(trial.t_interval([-0.4, -0.5, -0.6])) == "worse"
    assert trial.verdict(trial.t_interval([0.3, -0.2, 0.1, -0.1])) == "no difference shown"
    assert trial.verdict(trial.t_interval([0.3])) == "too few seeds"


def test_short_trial_on_digits(tmp_path, capsys):
    out = tmp_path / "trial.json"
    code = trial.main(["--dataset", "digits", "--seeds", "0-1", "--set", "train.epochs=3", "--set",
                       "distill.epochs=2", "--set", "distill.shift=1", "--json", "--quiet", "--out", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert [row["seed"] for row in printed["seeds"]] == [0, 1]
    for row in printed["seeds"]:
        assert 0.1 < row["teacher"] <= 1 and 0 < row["baseline"] <= 1
        assert row["difference"] == pytest.approx(row["distilled"] - row["baseline"])
    assert printed["distill"]["shift"] == 1 and printed["verdict"] in ("better", "worse", "no difference shown")


def test_recipe_without_distill_is_refused(capsys):
    assert trial.main(["--recipe", "int8", "--seeds", "0", "--quiet"]) == 2
    assert "has no distill stage" in capsys.readouterr().err
