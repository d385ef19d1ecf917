"""``--recipe auto`` (issue 14): the choice rule on synthetic measurements, and one small real run.

The selection is a pure function of the measured rows, so its rules (budget, objective,
ties to the smaller file, never slower than float32 on latency, nothing measurable) are
tested on numbers; the end-to-end run checks that what ``convert --recipe auto`` wrote
agrees with that rule applied to what it measured.
"""

from __future__ import annotations

import json
import sys
import types

import pytest

from converters.auto import select
from converters.errors import ConversionError


def row(name, median_us, size_bytes, drop_points=0.0, status="ok", reason=""):
    """One measured candidate, as ``converters.auto`` hands it to ``select``."""
    return {
        "name": name,
        "status": status,
        "reason": reason,
        "median_us": median_us,
        "size_bytes": size_bytes,
        "drop_points": drop_points,
    }


FLOAT32 = row("float32", 100.0, 1000)


def by_name(decision):
    return {r["name"]: r for r in decision["rows"]}


def test_the_fastest_within_budget_wins_and_the_one_over_budget_is_named():
    rows = [FLOAT32, row("int8", 40.0, 260, drop_points=1.5), row("dynamic", 70.0, 280, drop_points=0.4)]
    decision = select(rows, objective="latency", max_drop=1.0)
    assert decision["chosen"] == "dynamic"
    rows_out = by_name(decision)
    assert rows_out["int8"]["within_budget"] is False and "1.50 points" in rows_out["int8"]["why"]
    assert rows_out["dynamic"]["chosen"] and not rows_out["float32"]["chosen"]
    # a larger budget lets int8 in
    assert select(rows, objective="latency", max_drop=2.0)["chosen"] == "int8"


def test_never_slower_than_float32_on_latency_even_when_much_smaller():
    rows = [FLOAT32, row("int8", 420.0, 260), row("float16", 103.0, 500)]
    decision = select(rows, objective="latency", max_drop=1.0)
    assert decision["chosen"] == "float32"  # float32 itself is a valid answer
    assert "slower than float32 (4.20x" in by_name(decision)["int8"]["why"]
    assert "slower than float32 (1.03x" in by_name(decision)["float16"]["why"]
    # a margin forgives a few percent of noise, never 4x
    assert select(rows, objective="latency", max_drop=1.0, slower_margin=0.05)["chosen"] == "float16"
    # size does not have the rule: the smallest within budget wins however slow
    assert select(rows, objective="size", max_drop=1.0)["chosen"] == "int8"


def test_objectives_choose_differently_on_the_same_measurements():
    rows = [FLOAT32, row("int8", 45.0, 260), row("int4", 90.0, 150), row("dynamic", 60.0, 280)]
    assert select(rows, objective="latency", max_drop=1.0)["chosen"] == "int8"
    assert select(rows, objective="size", max_drop=1.0)["chosen"] == "int4"
    # balanced: sqrt(latency ratio * size ratio): int8 0.34, int4 0.37, dynamic 0.41
    assert select(rows, objective="balanced", max_drop=1.0)["chosen"] == "int8"


def test_ties_go_to_the_smaller_file():
    rows = [FLOAT32, row("float16", 99.0, 500), row("dynamic", 99.8, 280), row("fast-but-big", 98.5, 900)]
    decision = select(rows, objective="latency", max_drop=1.0, latency_tie=0.03)
    assert decision["chosen"] == "dynamic"  # all within 3% of the fastest: the smallest file
    assert "ties with dynamic" in by_name(decision)["fast-but-big"]["why"]
    assert "tied (within 3%)" in decision["reason"]
    # no tie band: the fastest wins
    assert select(rows, objective="latency", max_drop=1.0, latency_tie=0.0)["chosen"] == "fast-but-big"
    # equal sizes on the size objective: the faster one
    same = [FLOAT32, row("a", 80.0, 300), row("b", 70.0, 300)]
    assert select(same, objective="size", max_drop=1.0)["chosen"] == "b"


def test_failed_and_skipped_candidates_are_listed_with_their_reason_never_chosen():
    rows = [
        FLOAT32,
        row("int8", None, None, status="failed", reason="TFLite conversion (int8) failed: boom"),
        row("litert-int16x8", None, None, status="skipped", reason="converters.litert_quant not available"),
        row("slow-bench", None, 300, reason="benchmark failed: load: bad file"),
    ]
    decision = select(rows, objective="latency", max_drop=1.0)
    assert decision["chosen"] == "float32"
    out = by_name(decision)
    assert out["int8"]["why"] == "failed: TFLite conversion (int8) failed: boom"
    assert out["litert-int16x8"]["why"].startswith("skipped: converters.litert_quant")
    assert out["slow-bench"]["why"] == "benchmark failed: load: bad file"
    assert not any(r["eligible"] for r in decision["rows"] if r["name"] != "float32")


def test_nothing_to_compare_with_is_a_clear_error():
    with pytest.raises(ConversionError, match="float32 reference could not be measured"):
        select(
            [row("float32", None, 1000, reason="benchmark failed: x"), row("int8", 40.0, 260)],
            objective="latency",
            max_drop=1.0,
        )
    with pytest.raises(ConversionError, match="objective"):
        select([FLOAT32], objective="fastest", max_drop=1.0)
    with pytest.raises(ConversionError, match="max_drop"):
        select([FLOAT32], objective="latency", max_drop=float("nan"))


def test_the_auto_recipe_is_data_and_its_options_are_checked():
    from converters import recipe as recipes
    from converters.errors import RecipeError

    auto = recipes.load("auto")
    assert auto.stages == ["auto"] and "int8" in auto.auto.candidates and auto.auto.objective == "latency"
    with pytest.raises(RecipeError, match="auto.target"):
        recipes.with_overrides(auto, {"auto.target": "http://phone"})
    with pytest.raises(RecipeError, match="auto.candidates"):
        recipes.with_overrides(auto, {"auto.candidates": "int8,int3"})
    with pytest.raises(RecipeError, match="drop 'quantize'"):
        recipes.from_dict({"stages": ["quantize", "auto"]})
    assert recipes.with_overrides(auto, {"auto.target": "ssh://pi@raspberry:2222"}).auto.target.endswith(":2222")


def _fake_litert_quant():
    """A stand-in for helper byom-tflite's converters.litert_quant with its interface: one scheme returns
    the float model unchanged (so the plumbing can be checked), one raises as a failing quantizer would."""
    module = types.ModuleType("converters.litert_quant")
    module.SCHEMES = {"weight-only-int8": "int8 weights, float compute", "weight-only-int4": "int4 weights"}
    module.available = lambda: True

    def quantize_tflite(float_model, scheme, calibration=None, *, keep_float=()):
        if scheme == "weight-only-int4":
            raise ConversionError("LiteRT quantizer: int4 is not supported for this op")
        return bytes(float_model)

    module.quantize_tflite = quantize_tflite
    return module


@pytest.mark.slow
def test_auto_run_end_to_end_ships_what_the_rule_chooses(digits_models, tmp_path, monkeypatch, capsys):
    """A real run on the tiny digits CNN: every candidate measured, the chosen one copied to model.tflite, the
    choice equal to the rule applied to the recorded measurements, the table printed, a PNG and a page written."""
    import converters
    from edge_sdk.cli import main

    monkeypatch.setitem(sys.modules, "converters.litert_quant", _fake_litert_quant())
    monkeypatch.setattr(converters, "litert_quant", sys.modules["converters.litert_quant"], raising=False)
    out = tmp_path / "auto"
    code = main(
        [
            "convert",
            str(digits_models.teacher_keras),
            "--recipe",
            "auto",
            "--calibration",
            str(digits_models.calib),
            "--eval",
            str(digits_models.eval),
            "--out",
            str(out),
            "--quiet",
            "--max-drop",
            "2",
            "--set",
            "auto.bench_seconds=0.2",
            "--set",
            "auto.candidates=float16,dynamic,int8,litert-weight-only-int8,litert-weight-only-int4",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    record = summary["comparisons"]["auto"]
    assert summary["chosen"] == record["chosen"] and (out / record["chosen"]).is_file()
    assert record["max_drop"] == 2.0 and record["objective"] == "latency"
    rows = {r["name"]: r for r in record["table"]}
    assert set(rows) == {"float32", "float16", "dynamic", "int8", "litert-weight-only-int8", "litert-weight-only-int4"}
    assert rows["litert-weight-only-int4"]["status"] == "failed"
    assert "int4 is not supported" in rows["litert-weight-only-int4"]["why"]
    for name in ("float32", "float16", "dynamic", "int8", "litert-weight-only-int8"):
        assert rows[name]["status"] == "ok" and rows[name]["median_us"] > 0 and rows[name]["accuracy"] > 0.5
        assert 0 < rows[name]["size_bytes"] == (out / rows[name]["file"]).stat().st_size
    assert rows["int8"]["size_ratio"] < 0.5 < rows["float16"]["size_ratio"] < 0.7
    # the rule, applied again to what was recorded, picks the same candidate
    again = select(
        [
            {k: r.get(k) for k in ("name", "status", "reason", "median_us", "size_bytes", "drop_points")}
            for r in record["table"]
        ],
        objective="latency",
        max_drop=2.0,
    )
    assert again["chosen"] == record["chosen_candidate"]
    chosen = rows[record["chosen_candidate"]]
    assert chosen["within_budget"] and chosen["median_us"] <= rows["float32"]["median_us"]
    # the stable name holds the chosen bytes; both manifests carry the whole table
    assert (out / "model.tflite").read_bytes() == (out / record["chosen"]).read_bytes()
    stable = json.loads((out / "model.json").read_text())
    assert stable["model_file"] == "model.tflite" and stable["copy_of"] == record["chosen"]
    assert len(stable["auto"]["table"]) == 6
    assert json.loads((out / record["chosen"]).with_suffix(".json").read_text())["auto"]["chosen"] == record["chosen"]
    assert (out / "auto-pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "auto.html").read_text()
    assert "data:image/png;base64," in page and record["chosen"] in page
    # the trade-off table on the terminal
    assert "latency x f32 (median, p90)" in printed and f"chosen: {record['chosen']} -> model.tflite" in printed


def test_auto_with_no_candidate_built_exits_2_with_the_reasons(digits_models, tmp_path, capsys):
    """int8 without calibration data cannot be built; when nothing but float32 exists the run stops, exit 2."""
    from edge_sdk.cli import main

    out = tmp_path / "none"
    code = main(
        [
            "convert",
            str(digits_models.teacher_keras),
            "--recipe",
            "auto",
            "--eval",
            str(digits_models.eval),
            "--out",
            str(out),
            "--quiet",
            "--set",
            "auto.candidates=int8,int8-float-io",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "no candidate could be built" in err and "int8: needs calibration data" in err
    assert "int8-float-io: needs calibration data" in err and "Traceback" not in err


def test_auto_refuses_bad_options_before_any_work(digits_models, tmp_path, capsys):
    from edge_sdk.cli import main

    base = [
        "convert",
        str(digits_models.teacher_keras),
        "--recipe",
        "auto",
        "--eval",
        str(digits_models.eval),
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    ]
    assert main(base + ["--max-drop", "150"]) == 2
    assert "auto.max_drop" in capsys.readouterr().err
    assert main(base + ["--target", "ftp://device"]) == 2
    assert "ssh://" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_keep_float_recovers_a_model_full_int8_breaks(parity_digits, tmp_path, capsys):
    """On the digits CNN with one activation outlier, full int8 loses far more than the budget; the candidate
    that keeps the debugger's worst layers in float is within it, and the size objective ships it."""
    from edge_sdk.cli import main

    outlier = parity_digits["outlier"]
    out = tmp_path / "keep"
    code = main(
        [
            "convert",
            str(outlier["keras"]),
            "--recipe",
            "auto",
            "--calibration",
            str(outlier["train"]),
            "--eval",
            str(outlier["test"]),
            "--out",
            str(out),
            "--quiet",
            "--objective",
            "size",
            "--set",
            "auto.candidates=int8,int8-keep-float",
            "--set",
            "auto.bench_seconds=0.2",
        ]
    )
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "summary.json").read_text())["comparisons"]["auto"]
    rows = {r["name"]: r for r in record["table"]}
    assert rows["int8"]["drop_points"] > 5 and rows["int8"]["within_budget"] is False
    keep = rows["int8-keep-float"]
    assert 1 <= len(keep["float_layers"]) <= 3 and keep["drop_points"] <= 1.0 and keep["within_budget"]
    assert keep["size_ratio"] < 1.0 and record["chosen_candidate"] == "int8-keep-float"
    assert any("debugger" in note for note in keep["notes"])


def test_a_float_tflite_input_gets_its_candidates_from_the_litert_quantizer(digits_models, tmp_path, capsys):
    """A .tflite input has no Keras graph: float16/dynamic/int8 come from the LiteRT quantizer's schemes (and its
    own weight-only scheme runs for real), the debugger's candidate is skipped with the reason."""
    from converters import litert_quant
    from converters._tf import tf
    from edge_sdk.cli import main

    if not litert_quant.available():
        pytest.skip("litert-quantizer is not installed (the 'quantize' extra)")
    model = tmp_path / "float.tflite"
    model.write_bytes(tf.lite.TFLiteConverter.from_keras_model(digits_models.teacher).convert())
    out = tmp_path / "out"
    code = main(
        [
            "convert",
            str(model),
            "--recipe",
            "auto",
            "--calibration",
            str(digits_models.calib),
            "--eval",
            str(digits_models.eval),
            "--out",
            str(out),
            "--quiet",
            "--set",
            "auto.bench_seconds=0.2",
            "--set",
            "auto.candidates=dynamic,int8,int8-keep-float,litert-weight-only-int8",
        ]
    )
    assert code == 0, capsys.readouterr().err
    rows = {r["name"]: r for r in json.loads((out / "summary.json").read_text())["comparisons"]["auto"]["table"]}
    for name in ("dynamic", "int8", "litert-weight-only-int8"):
        assert rows[name]["status"] == "ok" and rows[name]["size_ratio"] < 0.5 and rows[name]["accuracy"] > 0.8
    assert any("LiteRT quantizer" in note for note in rows["int8"]["notes"])
    assert rows["int8-keep-float"]["status"] == "skipped" and ".tflite" in rows["int8-keep-float"]["why"]
