"""Issue 25 items 1-5: each model judged by its task; wiped-out outputs never promoted silently.

Unit tests of ``edge_sdk.tasks`` on numbers (decoding, NMS, matching, mAP, AUC, inference,
wipe-outs), then three tiny real models trained on scikit-learn's digits in seconds
(``tests/task_models.py``): a YOLO-style detector with one ``[1, 4+C, N]`` output (boxes in
pixels, sigmoid scores), a dense autoencoder (anomalies: corrupted digits) and a segmenter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk import tasks as T
from edge_sdk.cli import main


# ------------------------------------------------------------------------------------------------
# numbers
# ------------------------------------------------------------------------------------------------
def yolo_output(boxes_px, scores):
    """[B, 4+C, N] from per-anchor xywh boxes [B, N, 4] and scores [B, N, C]."""
    return np.concatenate([np.swapaxes(boxes_px, 1, 2), np.swapaxes(scores, 1, 2)], axis=1).astype(np.float32)


def test_yolo_decode_nms_and_matching():
    boxes = np.array([[[100, 100, 50, 50], [102, 101, 50, 50], [400, 300, 80, 60]] + [[10, 10, 5, 5]] * 5], np.float32)
    scores = np.array([[[0.9, 0.1], [0.8, 0.1], [0.05, 0.7]] + [[0.1, 0.1]] * 5], np.float32)
    det = T.decode_detections([yolo_output(boxes, scores)])[0]
    assert len(det.boxes) == 2  # the duplicate is suppressed, the weak one filtered
    assert sorted(det.classes.tolist()) == [0, 1]
    assert np.allclose(det.boxes[0], [75, 75, 125, 125])
    # the quantized copy that lost the second object: recall 0.5, precision 1
    q_scores = scores.copy()
    q_scores[0, 2, 1] = 0.1
    m = T.detection_metrics([yolo_output(boxes, scores)], [yolo_output(boxes, q_scores)], None)
    assert m.metrics["recall"] == 0.5 and m.metrics["precision"] == 1.0 and m.metrics["matched_iou"] == 1.0
    # SSD-style boxes + scores, and mAP against labels
    ssd_boxes = np.array([[[75, 75, 125, 125], [360, 270, 440, 330]]], np.float32)
    ssd_scores = np.array([[[0.9, 0.0], [0.0, 0.8]]], np.float32)
    truth = np.array([[[0, 75, 75, 125, 125], [1, 360, 270, 440, 330]]], np.float32)
    ssd = T.detection_metrics([ssd_boxes, ssd_scores], [ssd_boxes, ssd_scores], truth, head="ssd")
    assert ssd.labels["float_map50"] == 1.0 and ssd.metrics["recall"] == 1.0


def test_auc_correlation_snr():
    assert T.auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert T.auc(np.array([1, 2, 3, 3, 5.0]), np.array([0, 0, 1, 0, 1])) == pytest.approx(11 / 12)
    assert T.correlation(np.arange(5), 2 * np.arange(5) + 1) == pytest.approx(1.0)
    assert T.snr_db(np.ones(100), np.ones(100) * 1.1) == pytest.approx(20.0)


def test_classification_metrics_refuse_maps_instead_of_reading_full_agreement():
    maps = np.zeros((4, 8, 8, 3), np.float32)  # not one class row per example: no top-1 to agree on
    with pytest.raises(T.TaskError, match=r"expected class scores.*got float output shape \[4, 8, 8, 3\]"):
        T.classification_metrics(maps, maps + 1, None)
    scores = np.eye(4, dtype=np.float32)
    assert T.classification_metrics(scores, scores, None).metrics["top1_agreement"] == 1.0


def test_task_inference_rules():
    rng = np.random.default_rng(0)
    x = rng.random((8, 64)).astype(np.float32)
    probs = rng.random((8, 10))
    probs /= probs.sum(1, keepdims=True)
    assert T.infer_task({"x": x}, {"p": probs})[0] == T.Task.CLASSIFICATION
    assert T.infer_task({"x": x}, {"p": rng.random((8, 5))})[0] == T.Task.MULTILABEL
    assert T.infer_task({"x": x}, {"r": rng.random((8, 64))})[0] == T.Task.AUTOENCODER
    assert T.infer_task({"x": x}, {"e": rng.normal(size=(8, 16))})[0] == T.Task.GENERIC
    img = rng.random((2, 32, 32, 3)).astype(np.float32)
    assert T.infer_task({"img": img}, {"m": rng.random((2, 32, 32, 1))})[0] == T.Task.SEGMENTATION
    boxes = rng.random((2, 20, 4)) * 640
    assert T.infer_task({"img": img}, {"d": yolo_output(boxes, rng.random((2, 20, 3)))})[0] == T.Task.DETECTION
    assert T.infer_task({"x": x}, {"p": probs}, "regression")[0] == T.Task.REGRESSION
    # ten features in, ten class probabilities out: a classifier, not an autoencoder
    assert T.infer_task({"x": rng.random((8, 10))}, {"p": probs})[0] == T.Task.CLASSIFICATION
    with pytest.raises(T.TaskError, match="expected one of auto, classification"):
        T.parse_task("detector")


def test_wipeouts_find_collapsed_channel_groups_not_scattered_dead_pixels():
    rng = np.random.default_rng(0)
    f = yolo_output(rng.random((50, 20, 4)) * 640, rng.random((50, 20, 3)))
    q = f.copy()
    q[:, 4:] = 0.0  # one int8 scale of 2.5 for 0-640 and 0-1: every score becomes 0
    found = T.find_wipeouts({"d": f}, {"d": q}, [("d", "d")])
    assert found and found[0]["channels"] == [4, 5, 6] and "channels 4-6 (axis 1)" in found[0]["what"]
    assert "split the output" in T.wipeout_message(found, "int8.tflite")
    # an autoencoder whose 3 of 64 near-blank border pixels round to one value is not wiped out
    f2 = rng.random((50, 64))
    f2[:, :3] *= 1e-3
    q2 = f2.copy()
    q2[:, :3] = 0.0
    assert T.find_wipeouts({"r": f2}, {"r": q2}, [("r", "r")]) == []
    # a whole output gone constant is
    assert T.find_wipeouts({"r": f2}, {"r": np.zeros_like(f2)}, [("r", "r")])


def test_a_softmax_output_whose_never_chosen_classes_round_to_zero_is_not_wiped_out():
    # MLPerf's keyword spotter on calibration-like rows: 6 of 12 classes never get even 1e-4 in float, and
    # int8's 1/256 step rounds them to 0: nothing a decision reads was lost (this failed convert --recipe int8)
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, (40, 12))
    logits[:, 1:7] -= 30.0
    f = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    q = np.round(f * 256) / 256
    assert float(f[:, 1:7].max()) < 1e-4 and float(q[:, 1:7].max()) == 0.0
    assert T.find_wipeouts({"p": f}, {"p": q}, [("p", "p")]) == []
    # the same classes collapsing where the float model did give them weight is still caught
    logits[:, 1:7] += 30.0
    f = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    q = f.copy()
    q[:, 1:7] = 0.0
    assert T.find_wipeouts({"p": f}, {"p": q}, [("p", "p")])


def test_the_recipe_declares_every_task_and_budget_once():
    from converters.recipe import HEAD_FORMATS, TASK_CHOICES, TaskOptions, describe_rows

    assert TASK_CHOICES == T.TASK_CHOICES and HEAD_FORMATS == T.HEAD_FORMATS
    budgets = TaskOptions().budgets()
    assert {spec[0] for spec in T.BUDGETS.values()} == set(budgets)
    assert budgets == T.DEFAULT_BUDGETS
    listed = {row[0]: row for row in describe_rows()}
    for key in ("task.task", "task.min_iou", "task.min_snr_db", "task.min_recall", "task.min_correlation"):
        assert key in listed and listed[key][4].startswith("--")


def test_auto_select_follows_the_task_budget_not_points():
    from converters.auto import select

    def row(name, median, size, **extra):
        return {
            "name": name,
            "status": "ok",
            "reason": "",
            "median_us": median,
            "size_bytes": size,
            "drop_points": None,
            **extra,
        }

    rows = [
        row("float32", 100.0, 1000, budget_ok=True, budget_text="min_iou 0.9"),
        row("int8", 40.0, 250, budget_ok=False, budget_why="wipes out channels 4-6 of output 'd'"),
        row(
            "int8-float-head",
            60.0,
            300,
            budget_ok=True,
            budget_why="recall_min 0.99 >= 0.9",
            budget_text="min_recall 0.9",
        ),
    ]
    decision = select(rows, objective="latency", max_drop=1.0)
    by = {r["name"]: r for r in decision["rows"]}
    assert decision["chosen"] == "int8-float-head" and "min_recall 0.9" in decision["reason"]
    assert by["int8"]["within_budget"] is False and "wipes out" in by["int8"]["why"]


# ------------------------------------------------------------------------------------------------
# real tiny models
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def task_models(tmp_path_factory):
    import task_models as tm

    root = tmp_path_factory.mktemp("task-models")
    xtr, ytr, xte, yte = tm.digits_flat()
    out = {"root": root}
    yolo = tm.build_yolo_detector(xtr, ytr)
    yolo.save(root / "yolo.h5")
    (root / "yolo-int8.tflite").write_bytes(tm.to_tflite(yolo, xtr.reshape(-1, 8, 8, 1), "int8"))
    np.savez(root / "yolo-eval.npz", x=xte.reshape(-1, 8, 8, 1))  # no labels: a detector's held-out images
    np.save(root / "yolo-cal.npy", xtr[:200].reshape(-1, 8, 8, 1))
    ae = tm.build_autoencoder(xtr)
    ae.save(root / "ae.h5")
    order = np.random.default_rng(0).permutation(2 * len(xte))
    np.savez(
        root / "ae-eval.npz",
        x=np.concatenate([xte, tm.corrupt(xte)])[order],
        y=np.r_[np.zeros(len(xte)), np.ones(len(xte))][order],
    )  # y: anomaly flags, not classes
    np.savez(root / "ae-eval-unlabelled.npz", x=xte)
    np.save(root / "ae-cal.npy", xtr[:200])
    seg = tm.build_segmenter(xtr)
    seg.save(root / "seg.h5")
    xs = tm.segmenter_inputs(xte)
    (root / "seg-int8.tflite").write_bytes(tm.to_tflite(seg, tm.segmenter_inputs(xtr), "int8"))
    np.savez(root / "seg-eval.npz", x=xs, y=(xte.reshape(-1, 8, 8) > 0.25).astype(np.int64))
    out.update(
        {
            k: root / v
            for k, v in {
                "yolo": "yolo.h5",
                "yolo_int8": "yolo-int8.tflite",
                "yolo_eval": "yolo-eval.npz",
                "yolo_cal": "yolo-cal.npy",
                "ae": "ae.h5",
                "ae_eval": "ae-eval.npz",
                "ae_eval_unlabelled": "ae-eval-unlabelled.npz",
                "ae_cal": "ae-cal.npy",
                "seg": "seg.h5",
                "seg_int8": "seg-int8.tflite",
                "seg_eval": "seg-eval.npz",
            }.items()
        }
    )
    return out


def test_parity_on_the_detector_reports_detection_metrics_and_fails_the_wipe_out(task_models, tmp_path, capsys):
    report = tmp_path / "p.json"
    code = main(
        [
            "parity",
            str(task_models["yolo"]),
            str(task_models["yolo_int8"]),
            "--data",
            str(task_models["yolo_eval"]),
            "--no-layers",
            "-q",
            "--json",
            str(report),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1, out  # not "NO GATE", exit 0
    doc = json.loads(report.read_text())["parity"]
    assert doc["summary"]["task"] == "detection"
    assert doc["summary"]["top1_agreement"] is None  # no argmax over boxes and scores
    metrics = doc["task_metrics"]["metrics"]
    assert metrics["float_detections"] > 0 and metrics["quantized_detections"] == 0 and metrics["recall"] == 0.0
    assert "wiped out channels 4-6 (axis 1) of output 'detections'" in out and "split the output" in out


def test_convert_int8_refuses_to_promote_the_wiped_out_detector(task_models, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code = main(
        [
            "convert",
            str(task_models["yolo"]),
            "--recipe",
            "int8",
            "--calibration",
            str(task_models["yolo_cal"]),
            "--eval",
            str(task_models["yolo_eval"]),
            "--out",
            str(out_dir),
            "--formats",
            "tflite",
            "--latency-runs",
            "0",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and not out_dir.exists()
    assert "int8.tflite: quantization wiped out channels 4-6" in out and "keep the last op in float" in out


def test_auto_ships_the_int8_that_keeps_the_detector_head_in_float(task_models, tmp_path, capsys):
    out_dir = tmp_path / "auto"
    code = main(
        [
            "convert",
            str(task_models["yolo"]),
            "--recipe",
            "auto",
            "--calibration",
            str(task_models["yolo_cal"]),
            "--eval",
            str(task_models["yolo_eval"]),
            "--out",
            str(out_dir),
            "--objective",
            "size",
            "--set",
            "auto.candidates=int8,int8-float-head",
            "--set",
            "auto.bench_seconds=0.05",
            "--set",
            "auto.eval_samples=300",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    record = json.loads((out_dir / "summary.json").read_text())["comparisons"]["auto"]
    rows = {r["name"]: r for r in record["table"]}
    assert record["task"] == "detection"
    assert rows["int8"]["within_budget"] is False and "wipes out" in rows["int8"]["why"]
    assert rows["int8-float-head"]["within_budget"] is True and not rows["int8-float-head"].get("wipeouts")
    assert record["chosen_candidate"] == "int8-float-head"
    manifest = json.loads((out_dir / "model.json").read_text())
    assert manifest["task"] == "detection"


def test_auto_judges_the_autoencoder_by_its_anomaly_score_and_ships_int8(task_models, tmp_path, capsys):
    out_dir = tmp_path / "auto-ae"
    code = main(
        [
            "convert",
            str(task_models["ae"]),
            "--recipe",
            "auto",
            "--calibration",
            str(task_models["ae_cal"]),
            "--eval",
            str(task_models["ae_eval"]),
            "--out",
            str(out_dir),
            "--objective",
            "size",
            "--set",
            "auto.candidates=float16,int8",
            "--set",
            "auto.bench_seconds=0.05",
            "--set",
            "auto.eval_samples=300",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    record = json.loads((out_dir / "summary.json").read_text())["comparisons"]["auto"]
    rows = {r["name"]: r for r in record["table"]}
    assert record["task"] == "autoencoder" and record["chosen_candidate"] == "int8"
    tm = rows["int8"]["task_metrics"]
    assert tm["metrics"]["score_correlation"] > 0.98 and tm["labels"]["quantized_auc"] > 0.95
    assert rows["int8"]["agreement"] is None  # no argmax over 64 reconstructed pixels
    assert json.loads((out_dir / "model.json").read_text())["task"] == "autoencoder"


def test_label_free_eval_is_accepted_and_a_wrong_eval_is_refused_before_any_conversion(task_models, tmp_path, capsys):
    from converters import pipeline

    result = pipeline.run(
        "int8",
        str(task_models["ae"]),
        tmp_path / "ok",
        calibration=str(task_models["ae_cal"]),
        eval_data=str(task_models["ae_eval_unlabelled"]),
        overrides={"export.formats": ["tflite"], "export.latency_runs": 0},
    )
    assert result.comparisons["task"]["task"] == "autoencoder"
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.zeros((4, 64), np.float32), b=np.zeros((4, 64), np.float32))
    code = main(
        [
            "convert",
            str(task_models["ae"]),
            "--recipe",
            "int8",
            "--calibration",
            str(task_models["ae_cal"]),
            "--eval",
            str(bad),
            "--out",
            str(tmp_path / "no"),
            "--formats",
            "tflite",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "eval data" in err and "'a'" in err and "float32.tflite" not in err
    wrong_count = tmp_path / "wrong-count.npz"
    np.savez(wrong_count, x=np.zeros((4, 64), np.float32), y=np.zeros(3))
    code = main(
        [
            "convert",
            str(task_models["ae"]),
            "--recipe",
            "int8",
            "--calibration",
            str(task_models["ae_cal"]),
            "--eval",
            str(wrong_count),
            "--out",
            str(tmp_path / "no"),
            "--formats",
            "tflite",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "expected 4 labels" in err and "float32.tflite" not in err
    code = main(
        [
            "convert",
            str(task_models["ae"]),
            "--recipe",
            "int8",
            "--calibration",
            str(task_models["ae_cal"]),
            "--eval",
            str(task_models["ae_eval_unlabelled"]),
            "--max-drop",
            "1",
            "--out",
            str(tmp_path / "no"),
            "--formats",
            "tflite",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "expected labels under key 'y'" in err and "float32.tflite" not in err


def test_parity_on_the_segmenter_reports_mask_iou(task_models, tmp_path, capsys):
    from converters.parity import run_parity

    result = run_parity(task_models["seg"], task_models["seg_int8"], str(task_models["seg_eval"]), progress=False)
    assert result["task"]["name"] == "segmentation"
    m = result["task_metrics"]
    assert 0.9 < m["metrics"]["mask_iou"] <= 1.0 and m["labels"]["float_iou"] > 0.9
    assert result["per_class"] == [] and result["summary"]["top1_agreement"] is None
    code = main(
        [
            "parity",
            str(task_models["seg"]),
            str(task_models["seg_int8"]),
            "--data",
            str(task_models["seg_eval"]),
            "--no-layers",
            "-q",
            "--min-iou",
            "0.999999",
        ]
    )
    out = capsys.readouterr().out
    assert "mask iou" in out and "(min_iou)" in out
    assert code == (0 if m["metrics"]["mask_iou"] >= 0.999999 else 1)


def test_reference_check_on_the_device_knows_the_task_and_the_wipe_out(task_models, tmp_path, capsys):
    golden = tmp_path / "golden.npz"
    assert (
        main(
            [
                "parity",
                "--write-reference",
                str(golden),
                str(task_models["yolo"]),
                "--data",
                str(task_models["yolo_eval"]),
                "--samples",
                "50",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    code = main(["parity", "--reference", str(golden), str(task_models["yolo_int8"])])
    out = capsys.readouterr().out
    assert code == 1 and "task:      detection" in out and "quantization wiped out channels 4-6" in out


def test_the_auto_tuner_judges_the_detector_by_recall_and_keeps_its_output_tail_float(task_models, tmp_path):
    from converters.quality import parity_check

    tuned = tmp_path / "tuned.tflite"
    outcome = parity_check(
        str(task_models["yolo"]),
        str(task_models["yolo_int8"]),
        str(task_models["yolo_eval"]),
        layers=False,
        calibration=str(task_models["yolo_cal"]),
        accuracy_budget=1.0,
        autotune_out=str(tuned),
        progress=False,
    )
    assert outcome.tuned["metric"] == "recall_min" and outcome.tuned["chosen"] == "int8 + float head"
    manifest = json.loads(tuned.with_suffix(".json").read_text())
    assert manifest["metrics"]["recall_min"] >= 0.9 and "accuracy" not in manifest["metrics"]
    assert outcome.exit_code == 1  # the file under test (full int8) still wiped its scores out


def test_the_auto_tuner_keeps_trying_float_layers_after_the_float_head_misses_the_budget(task_models, tmp_path):
    from converters.quality import parity_check

    outcome = parity_check(  # recall above 1 is out of reach: every variant is tried, none chosen
        str(task_models["yolo"]),
        str(task_models["yolo_int8"]),
        str(task_models["yolo_eval"]),
        layers=False,
        calibration=str(task_models["yolo_cal"]),
        accuracy_budget=1.0,
        budgets={"min_recall": 1.5},
        autotune_out=str(tmp_path / "tuned.tflite"),
        progress=False,
    )
    names = [v["name"] for v in outcome.tuned["variants"]]
    assert "int8 + float head" in names and "int8 + 1 float" in names  # decoded with the same head after it
    assert outcome.tuned["chosen"] is None


def test_reference_check_gates_on_the_task_budget_given(task_models, tmp_path, capsys):
    """`parity --reference` on a segmenter with --min-iou / --task generic --min-snr-db gates on them, not 'NO CHECK'."""
    golden = tmp_path / "seg-golden.npz"
    assert (
        main(
            [
                "parity",
                "--write-reference",
                str(golden),
                str(task_models["seg"]),
                "--data",
                str(task_models["seg_eval"]),
                "--samples",
                "40",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    code = main(["parity", "--reference", str(golden), str(task_models["seg_int8"]), "--min-iou", "0.5"])
    out = capsys.readouterr().out
    assert code == 0 and "PASS" in out and "min_iou" in out and "NO CHECK" not in out
    code = main(
        ["parity", "--reference", str(golden), str(task_models["seg_int8"]), "--task", "generic", "--min-snr-db", "200"]
    )
    out = capsys.readouterr().out
    assert code == 1 and "task:      generic" in out and "FAIL" in out and "min_snr_db" in out


@pytest.mark.parametrize(
    "task, expected", [("detection", "detection head"), ("autoencoder", "autoencoder"), ("segmentation", "per-pixel")]
)
def test_a_declared_task_the_model_cannot_have_is_refused_before_any_conversion(tmp_path, capsys, task, expected):
    """--task detection/autoencoder/segmentation on a 10-class classifier: exit 2 before quantizing, not after
    (segmentation was accepted and reported 'mask iou' over 10 class scores)."""
    model = Path(__file__).parents[1] / "data" / "public_models" / "mlperf_tiny_ic_resnet8_float.tflite"
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32) * 255)
    code = main(
        [
            "convert",
            str(model),
            "--recipe",
            "int8",
            "--calibration",
            str(tmp_path / "cal.npy"),
            "--task",
            task,
            "--out",
            str(tmp_path / "out"),
            "--formats",
            "tflite",
            "--latency-runs",
            "0",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "int8.tflite" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_budget_of_another_task_is_not_silently_ignored(tmp_path, capsys):
    """`convert classifier --min-iou 0.9` promoted the model saying 'NO GATE': the flag checked nothing."""
    model = Path(__file__).parents[1] / "data" / "public_models" / "mlperf_tiny_ic_resnet8_float.tflite"
    x = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32) * 255
    np.save(tmp_path / "cal.npy", x)
    np.savez(tmp_path / "eval.npz", x=x)
    code = main(
        [
            "convert",
            str(model),
            "--recipe",
            "int8",
            "--calibration",
            str(tmp_path / "cal.npy"),
            "--eval",
            str(tmp_path / "eval.npz"),
            "--min-iou",
            "0.9",
            "--out",
            str(tmp_path / "out"),
            "--formats",
            "tflite",
            "--latency-runs",
            "0",
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and not (tmp_path / "out").exists(), captured
    assert "min_iou" in captured.err and "segmentation" in captured.err and "classification" in captured.err
    assert "error: ERROR" not in captured.err and "nothing promoted" in captured.err
