"""Golden references written on the build machine, checked with per-dtype tolerances where the test runs.

Run on x86 the references are checked on the machine that wrote them; in the aarch64 lane
(`make test-arm64`) they were written on x86 and are checked on emulated arm64, and in the
tflite-runtime lane on other kernels (builtin instead of XNNPACK for int8).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

import edge_sdk
from edge_sdk.reference import (
    FLOAT32_MAX_ULPS,
    OTHER_KERNELS_MAX_STEPS,
    check_reference,
    kernels_of,
    read_reference,
    write_reference,
)


@pytest.mark.parametrize("name", ["int8", "uint8"])
def test_quantized_outputs_reproduce_the_build_machine(target_models, name):
    result = check_reference(target_models[f"golden_{name}"], target_models[name], num_threads=1, min_agreement=0.9)
    assert result["status"] == "pass", result["verdict"]
    (steps,) = [c for c in result["checks"] if c["name"] == "max_steps"]
    if result["kernels"] == result["reference_kernels"]["quantized"]:
        # Same kernels (XNNPACK here and on the build machine): measured bitwise equal on x86 and aarch64.
        assert steps["threshold"] == 1.0 and result["outputs"][0]["bitwise_equal"], result["outputs"][0]
    else:
        assert steps["threshold"] == OTHER_KERNELS_MAX_STEPS and steps["value"] <= OTHER_KERNELS_MAX_STEPS
    assert result["outputs"][0]["top1_agreement"] >= 0.9


def test_float32_outputs_within_ulps_of_the_build_machine(target_models):
    result = check_reference(
        target_models["golden_float32"], target_models["float32"], num_threads=1, min_agreement=0.9
    )
    assert result["status"] == "pass", result["verdict"]
    (ulps,) = [c for c in result["checks"] if c["name"] == "max_ulps"]
    assert ulps["threshold"] == FLOAT32_MAX_ULPS and ulps["value"] <= FLOAT32_MAX_ULPS
    assert result["outputs"][0]["build_max_abs_diff"] <= 1e-5
    assert result["outputs"][0]["top1_agreement"] == 1.0


def _shifted_reference(target_models, tmp_path, kernels, steps):
    """golden_int8 with its stored int8 outputs moved by ``steps`` steps and ``kernels`` recorded."""
    ref = read_reference(target_models["golden_int8"])
    model = edge_sdk.load(target_models["int8"], num_threads=1)
    scale = model.outputs[0].quantization.scale
    shifted = {k: v + np.float32(steps * scale) for k, v in ref.quantized_outputs.items()}
    return write_reference(
        tmp_path / f"shifted_{kernels}.npz",
        ref.inputs,
        ref.float_outputs,
        float_model=ref.meta["float_model"],
        float_sha256s=ref.float_sha256s,
        quantized_outputs=shifted,
        quantized_sha256=ref.meta["quantized_sha256"],
        extra={"kernels": {"quantized": kernels}},
    )


def test_other_kernels_get_the_wider_step_tolerance(target_models, tmp_path):
    here = kernels_of(edge_sdk.load(target_models["int8"], num_threads=1))
    other = "builtin" if here == "xnnpack" else "xnnpack"

    def check(kernels, steps):
        return check_reference(
            _shifted_reference(target_models, tmp_path, kernels, steps), target_models["int8"], min_agreement=0.9
        )

    same = check(here, 5)
    assert same["status"] == "fail" and same["exit_code"] == 1, same["verdict"]
    assert "max_steps" in same["verdict"]
    switched = check(other, 5)
    assert switched["status"] == "pass", switched["verdict"]
    too_far = check(other, 40)
    assert too_far["status"] == "fail"


def test_parity_cli_reports_kernels(target_models):
    command = [
        sys.executable,
        "-m",
        "edge_sdk",
        "parity",
        "--reference",
        str(target_models["golden_int8"]),
        str(target_models["int8"]),
        "--min-agreement",
        "0.9",
    ]
    done = subprocess.run(command + ["--json", "-"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kernels"] in ("xnnpack", "builtin") and report["reference_kernels"]["quantized"] == "xnnpack"
    human = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert human.returncode == 0 and "kernels:" in human.stdout, human.stdout + human.stderr
