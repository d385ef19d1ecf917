"""tf.distribute strategies by name, and the TF_CONFIG cluster description.

``multiworker`` is ``tf.distribute.MultiWorkerMirroredStrategy``: every worker
runs the same command; TF_CONFIG (JSON) tells each one the cluster and its own
place in it, e.g. for worker 0 of two::

    TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                "task": {"type": "worker", "index": 0}}'

Worker 0 is the chief: it writes the artifacts into ``--out``; the other
workers write theirs to ``<out>/workers/worker-<index>`` so nothing clobbers.
All workers restore from ``<out>/backup`` (written by the chief), so to resume
a killed cluster job ``--out`` must be on storage every worker can read.
The strategy must be created before TensorFlow runs any op, which is why
:func:`training.train.fit` makes it first.
"""

from __future__ import annotations

import json
import os
from typing import Any

from training.errors import TrainingError, UnknownNameError

STRATEGIES = ("mirrored", "multiworker")


def read_tf_config(required: bool = False) -> dict[str, Any] | None:
    """Parse and check ``$TF_CONFIG``; None when unset (an error if ``required``)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        if required:
            raise TrainingError(
                "--strategy multiworker needs TF_CONFIG, a JSON object like "
                '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}; '
                "it is not set"
            )
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"TF_CONFIG is not valid JSON ({exc}); got {raw[:200]!r}") from None
    if not isinstance(config, dict):
        raise TrainingError(f"TF_CONFIG: expected a JSON object, got {type(config).__name__}")
    cluster = config.get("cluster")
    task = config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise TrainingError(f"TF_CONFIG: expected 'cluster' to map job names to address lists, got {cluster!r}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise TrainingError(f"TF_CONFIG: cluster[{job!r}] must be a list of 'host:port' strings, got {addresses!r}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int):
        raise TrainingError(
            f"TF_CONFIG: expected 'task' like {{'type': one of {sorted(cluster)}, 'index': int}}, got {task!r}"
        )
    if not 0 <= task["index"] < len(cluster[task["type"]]):
        raise TrainingError(
            f"TF_CONFIG: task index {task['index']} is out of range for {len(cluster[task['type']])} "
            f"{task['type']} address(es)"
        )
    return config


def task_info() -> tuple[str, int, int]:
    """``(task_type, task_index, number_of_workers)`` from TF_CONFIG; ``("worker", 0, 1)`` when unset."""
    config = read_tf_config()
    if config is None:
        return "worker", 0, 1
    cluster = config["cluster"]
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    return config["task"]["type"], int(config["task"]["index"]), workers


def is_chief() -> bool:
    """True for the task that writes artifacts: the ``chief``, else worker 0."""
    config = read_tf_config()
    if config is None:
        return True
    task_type, index = config["task"]["type"], config["task"]["index"]
    if "chief" in config["cluster"]:
        return task_type == "chief"
    return task_type == "worker" and index == 0


def make_strategy(name: str | None):
    """``None`` (default strategy), ``"mirrored"`` or ``"multiworker"`` -> a tf.distribute strategy or None."""
    if name in (None, "", "none", "default"):
        return None
    if not isinstance(name, str):
        return name  # an already-built tf.distribute.Strategy
    if name not in STRATEGIES:
        raise UnknownNameError(f"unknown strategy {name!r}: expected one of {list(STRATEGIES)} (or none)")
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    read_tf_config(required=True)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
        raise TrainingError(f"could not start MultiWorkerMirroredStrategy from TF_CONFIG: {exc}") from None


def strategy_name(strategy: Any) -> str:
    """A short name for logs and metrics."""
    if strategy is None:
        return "none"
    return {
        "MirroredStrategy": "mirrored",
        "MultiWorkerMirroredStrategy": "multiworker",
        "CollectiveAllReduceStrategy": "multiworker",
    }.get(type(strategy).__name__, type(strategy).__name__)
