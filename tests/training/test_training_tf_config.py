"""TF_CONFIG parsing: a malformed cluster description is a clear error, before TensorFlow starts."""

import json

import pytest

from training import distributed
from training.errors import TrainingError

GOOD = {"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}, "task": {"type": "worker", "index": 1}}


def test_task_info_and_chief(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(GOOD))
    assert distributed.task_info() == ("worker", 1, 2)
    assert not distributed.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps(dict(GOOD, task={"type": "worker", "index": 0})))
    assert distributed.is_chief()
    monkeypatch.delenv("TF_CONFIG")
    assert distributed.task_info() == ("worker", 0, 1) and distributed.is_chief()


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"task": GOOD["task"]}), "expected 'cluster'"),
        (json.dumps(dict(GOOD, cluster={"worker": ["nohost"]})), "'host:port'"),
        (json.dumps(dict(GOOD, task={"type": "ps", "index": 0})), "expected 'task'"),
        (json.dumps(dict(GOOD, task={"type": "worker", "index": 5})), "out of range"),
    ],
)
def test_malformed_tf_config(monkeypatch, raw, message):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(TrainingError, match=message):
        distributed.read_tf_config()


def test_multiworker_without_tf_config_says_what_to_set(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TrainingError, match="needs TF_CONFIG"):
        distributed.make_strategy("multiworker")
