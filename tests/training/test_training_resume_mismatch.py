"""An unfinished run is continued only by a run with the same model and settings (issue #12, section 5).

Resuming with another --model used to end in a TensorFlow traceback (or, worse, a
partial restore); now the CLI prints one line naming both runs and exits 2.
"""

import json

import pytest

from edge_sdk.cli import main
from training import train


class _Crash(Exception):
    pass


def _crash_in_second_epoch():
    import tf_keras

    class CrashMidEpoch(tf_keras.callbacks.Callback):
        """Fail inside epoch 1, after BackupAndRestore saved epoch 0 (an interrupted run)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 3:
                raise _Crash()

    return CrashMidEpoch()


@pytest.fixture
def unfinished_run(tmp_path, digits):
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        train.fit(
            "cnn-student",
            digits,
            epochs=3,
            out_dir=out,
            callbacks=[_crash_in_second_epoch()],
            progress=False,
            early_stopping=False,
            histograms=False,
        )
    assert train._has_backup(out / "backup")
    saved = json.loads((out / "backup" / train.RUN_IDENTITY_FILE).read_text())
    assert saved["model"] == "cnn-student" and saved["dataset"] == "digits"
    return out


def test_resume_with_another_model_is_refused_naming_both(unfinished_run, capsys):
    code = main(
        [
            "train",
            "--model",
            "cnn",
            "--dataset",
            "digits",
            "--epochs",
            "3",
            "--out",
            str(unfinished_run),
            "--quiet",
            "--no-histograms",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "'cnn-student'" in err and "--model cnn-student" in err and "--model cnn" in err
    assert train._has_backup(unfinished_run / "backup")  # the unfinished run is left to resume
    assert not (unfinished_run / "metrics.json").exists()


def test_resume_with_other_settings_is_refused_naming_both(unfinished_run, digits):
    with pytest.raises(train.ResumeMismatchError) as err:
        train.fit(
            "cnn-student",
            digits,
            epochs=3,
            out_dir=unfinished_run,
            batch_size=16,
            progress=False,
            early_stopping=False,
            histograms=False,
        )
    assert "--batch-size 32" in str(err.value) and "--batch-size 16" in str(err.value)


def test_same_settings_resume_and_finish_and_forget_the_identity(unfinished_run, digits):
    result = train.fit(
        "cnn-student", digits, epochs=3, out_dir=unfinished_run, progress=False, early_stopping=False, histograms=False
    )
    assert result.resumed_from_epoch == 1 and result.epochs_run == 3
    assert not (unfinished_run / "backup" / train.RUN_IDENTITY_FILE).exists()
    # finished: a new run with another model starts afresh in the same directory
    again = train.fit(
        "cnn", digits, epochs=1, out_dir=unfinished_run, progress=False, early_stopping=False, histograms=False
    )
    assert again.resumed_from_epoch == 0


def test_a_backup_another_model_wrote_without_an_identity_still_gives_one_clear_error(unfinished_run, digits):
    (unfinished_run / "backup" / train.RUN_IDENTITY_FILE).unlink()  # e.g. left by an older edge-sdk
    with pytest.raises(train.ResumeMismatchError, match="cannot continue"):
        train.fit(
            "cnn", digits, epochs=3, out_dir=unfinished_run, progress=False, early_stopping=False, histograms=False
        )
