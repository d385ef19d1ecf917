"""benchmarks/distill_trial.py: the paired multi-seed distillation trial (statistics and a short real run)."""

from __future__ import annotations

import json

import pytest
from script_modules import load_benchmark_script  # tests/ is on sys.path (tests/conftest.py)

trial = load_benchmark_script("distill_trial.py", "distill_trial")


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
    code = trial.main(
        [
            "--dataset",
            "digits",
            "--seeds",
            "0-1",
            "--set",
            "train.epochs=3",
            "--set",
            "distill.epochs=2",
            "--set",
            "distill.shift=1",
            "--json",
            "--quiet",
            "--out",
            str(out),
        ]
    )
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


def test_grid_and_student_parsing():
    settings = trial.parse_grid(["distill.temperature=1,4", "distill.transfer=,fashion-mnist:500"])
    assert settings == [
        {"distill.temperature": 1, "distill.transfer": ""},
        {"distill.temperature": 1, "distill.transfer": "fashion-mnist:500"},
        {"distill.temperature": 4, "distill.transfer": ""},
        {"distill.temperature": 4, "distill.transfer": "fashion-mnist:500"},
    ]
    assert trial.parse_grid([]) == [{}]
    assert trial.setting_name(settings[1]) == "temperature=1 transfer=fashion-mnist:500"
    assert trial.setting_name(settings[0]) == "temperature=1 transfer=none"
    assert trial.parse_widths("cnn:8-16-32") == (8, 16, 32) and trial.parse_widths("cnn-student") is None
    with pytest.raises(SystemExit, match="cnn:C1-C2-U"):
        trial.parse_widths("cnn:8-16")
    with pytest.raises(SystemExit, match="SECTION.KEY=V1,V2"):
        trial.parse_grid(["distill.alpha"])


def test_widths_student_has_the_zoo_shape():
    model = trial.build_cnn((16, 32, 32), (28, 28, 1), 10, seed=0)
    assert model.count_params() == 30_762  # the zoo cnn-student on 28x28 inputs
    again = trial.build_cnn((16, 32, 32), (28, 28, 1), 10, seed=0)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=False):
        assert (a == b).all()  # the seed fixes the initial weights


def test_grid_shares_one_teacher_and_one_baseline_per_seed(capsys):
    code = trial.main(
        [
            "--dataset",
            "digits",
            "--seeds",
            "0",
            "--split",
            "val",
            "--set",
            "train.epochs=2",
            "--set",
            "distill.epochs=1",
            "--set",
            "distill.shift=0",
            "--grid",
            "distill.temperature=1,3",
            "--students",
            "cnn:4-8-8",
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    rows = printed["seeds"]
    assert [r["setting"] for r in rows] == ["temperature=1", "temperature=3"]
    assert printed["split"] == "val" and all(r["split"] == "val" for r in rows)
    assert rows[0]["teacher"] == rows[1]["teacher"] and rows[0]["baseline"] == rows[1]["baseline"]
    assert rows[0]["param_ratio"] < 0.1
    # scored on the 180-image validation split: every accuracy is a multiple of 1/180
    for r in rows:
        for key in ("teacher", "distilled", "baseline"):
            assert abs(r[key] * 180 - round(r[key] * 180)) < 1e-3  # accuracies are rounded to 6 decimals
    assert [s["setting"] for s in printed["settings"]] == ["temperature=1", "temperature=3"]
