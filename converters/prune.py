"""Magnitude pruning with tensorflow-model-optimization.

Kernels holding less than ``min_share`` of the model's prunable weights are
left dense; the per-layer report lists every prunable layer either way, so the
overall sparsity counts the dense ones too.

A polynomial-decay schedule ramps sparsity from ``initial_sparsity`` to
``target_sparsity`` over the first ~2/3 of fine-tuning (the rest lets accuracy
recover at the final sparsity), with the ``UpdatePruningStep`` callback; the
wrappers are then stripped, leaving a plain tf_keras model whose pruned weights
are exact zeros. ``structured="2:4"`` keeps at most 2 non-zeros in every block
of 4 along the input channel (tfmot's ``sparsity_m_by_n``), the pattern some
accelerators run faster; it fixes sparsity at 50% for the layers it applies to.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from converters.context import Artifact, Comparison, RunContext
from converters.errors import ConversionError, first_line
from converters.recipe import PruneOptions, Recipe, build_options

# layer types tfmot can prune and that carry most of the weights
_PRUNABLE = ("Conv2D", "Dense", "DepthwiseConv2D", "Conv1D", "SeparableConv2D", "Embedding")


@dataclasses.dataclass
class LayerSparsity:
    """Sparsity of one layer's kernel after pruning."""

    layer: str
    kind: str
    params: int
    zeros: int

    @property
    def sparsity(self) -> float:
        """Share of the kernel that is exactly zero."""
        return self.zeros / self.params if self.params else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form for manifests and reports."""
        return {
            "layer": self.layer,
            "kind": self.kind,
            "params": self.params,
            "zeros": self.zeros,
            "sparsity": round(self.sparsity, 4),
        }


@dataclasses.dataclass
class PruneResult:
    """The stripped pruned model and its per-layer sparsity."""

    model: Any
    layers: list[LayerSparsity]
    target_sparsity: float
    structured: str

    @property
    def overall_sparsity(self) -> float:
        """Zeros over all pruned kernels' weights."""
        total = sum(layer.params for layer in self.layers)
        return sum(layer.zeros for layer in self.layers) / total if total else 0.0

    def report(self) -> list[dict[str, Any]]:
        """Per-layer sparsity rows."""
        return [layer.to_dict() for layer in self.layers]


def count_nonzero_params(model: Any) -> int:
    """Weights that are not exactly zero (what pruning removes)."""
    return int(sum(int(np.count_nonzero(w)) for w in model.get_weights()))


def layer_sparsity(model: Any) -> list[LayerSparsity]:
    """Per-layer kernel sparsity of a (stripped) tf_keras model."""
    rows = []
    for layer in model.layers:
        kind = layer.__class__.__name__
        if kind not in _PRUNABLE:
            continue
        kernel = layer.get_weights()[0] if layer.get_weights() else None
        if kernel is None:
            continue
        rows.append(LayerSparsity(layer.name, kind, int(kernel.size), int(np.sum(kernel == 0))))
    return rows


def prune(
    model: Any,
    inputs: dict[str, np.ndarray],
    labels: np.ndarray,
    options: PruneOptions | None = None,
    *,
    progress: Any | None = None,
    **overrides: Any,
) -> PruneResult:
    """Prune a tf_keras ``model`` while fine-tuning it on ``(inputs, labels)``.

    ``inputs``: ``{input name: array}``; ``labels``: class ids.
    ``options``: the recipe's ``[prune]`` section (default: its declared defaults);
    ``overrides``: single keys of it (``target_sparsity=0.5``), validated the same way.
    ``progress``: an extra Keras callback (a progress bar).
    """
    from converters._tf import tf_keras, tfmot
    from converters.finetune import compile_and_fit, task_loss

    opts = build_options(PruneOptions, options, **overrides)
    target_sparsity, initial_sparsity, structured = opts.target_sparsity, opts.initial_sparsity, opts.structured
    epochs, batch_size, frequency, min_share = opts.epochs, opts.batch_size, opts.frequency, opts.min_share
    learning_rate = opts.learning_rate
    if not isinstance(model, tf_keras.Model):
        raise ConversionError(
            f"pruning needs a tf_keras model (tensorflow-model-optimization), got "
            f"{type(model).__module__}.{type(model).__name__}"
        )
    n = len(next(iter(inputs.values())))
    steps_per_epoch = max(1, -(-n // batch_size))
    end_step = max(1, int(steps_per_epoch * epochs * 2 / 3))
    # tfmot only updates masks on multiples of `frequency` up to end_step: align them so the
    # final update lands on end_step and the target sparsity is really reached
    frequency = max(1, min(frequency, end_step // 4 or 1))
    end_step = max(frequency, (end_step // frequency) * frequency)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=initial_sparsity,
        final_sparsity=target_sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=frequency,
    )
    kwargs: dict[str, Any] = {}
    if structured == "2:4":
        kwargs["sparsity_m_by_n"] = (2, 4)

    def kernel_size(layer) -> int:
        weights = layer.get_weights()
        return int(weights[0].size) if weights else 0

    prunable_total = sum(kernel_size(layer) for layer in model.layers if layer.__class__.__name__ in _PRUNABLE)
    min_params = min_share * prunable_total

    def wrap(layer):
        # Prune weight-heavy layers only; normalisation and the like stay as they are. Kernels
        # holding under min_share of the prunable weights (a first conv, a 10-way classifier)
        # are few bytes but much of the accuracy, so they stay dense.
        if layer.__class__.__name__ in _PRUNABLE and kernel_size(layer) >= min_params:
            if structured == "2:4":
                kernel_shape = layer.get_weights()[0].shape if layer.get_weights() else (1, 1)
                if layer.__class__.__name__ not in ("Conv2D", "Dense") or kernel_shape[-2] % 4:
                    return layer  # 2:4 blocks run along input channels; a count not divisible by 4 cannot take them
                return tfmot.sparsity.keras.prune_low_magnitude(layer, **kwargs)
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    clone = tf_keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    try:
        pruned = tf_keras.models.clone_model(clone, clone_function=wrap)
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
        raise ConversionError(f"tfmot could not wrap the model for pruning: {first_line(exc)}") from None
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    if progress is not None:
        callbacks.append(progress)
    compile_and_fit(
        pruned,
        inputs,
        labels,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        callbacks=callbacks,
        loss=task_loss(model),
    )
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    return PruneResult(stripped, layer_sparsity(stripped), target_sparsity, structured)


def check_2_by_4(model: Any) -> bool:
    """True when every pruned kernel has at most 2 non-zeros per 4 consecutive input channels."""
    for layer in model.layers:
        if layer.__class__.__name__ not in ("Conv2D", "Dense"):
            continue
        kernel = layer.get_weights()[0]
        last_in = kernel.shape[-2]
        if last_in % 4:
            continue
        moved = np.moveaxis(kernel, -2, -1).reshape(-1, 4)
        if (np.count_nonzero(moved, axis=1) > 2).any():
            return False
    return True


# ------------------------------------------------------------------------------------------------
# the pipeline stage
# ------------------------------------------------------------------------------------------------
STAGE = "prune"


def planned_steps(recipe: Recipe) -> int:
    """Progress lines this stage prints: prune, then write the pruned float32 model."""
    return 2


@dataclasses.dataclass
class PruneComparison(Comparison):
    """summary.json's ``comparisons["prune"]``: the sparsity reached and, once the pruned model is quantized,
    its gzip size against the dense float32 it started from (what pruning buys on the wire)."""

    key: ClassVar[str] = "prune"
    line_order: ClassVar[int] = 20
    target_sparsity: float
    structured: Any
    overall_sparsity: float
    layers: list[dict[str, Any]]
    dense: Artifact  # the float32 artifact pruning started from
    pruned: Artifact  # the pruned float32 artifact
    shipped: Artifact | None = None  # the quantized file of the pruned model, when the run quantized it

    def finish(self, ctx: RunContext) -> None:
        self.shipped = next(
            (a for a in ctx.artifacts if a.stage == "quantize" and a.parent == self.pruned.sha256), None
        )

    def to_json(self) -> dict[str, Any]:
        out = {
            "target_sparsity": self.target_sparsity,
            "structured": self.structured,
            "overall_sparsity": self.overall_sparsity,
            "layers": self.layers,
        }
        if self.shipped is not None:
            out["gzip_ratio_vs_dense_float32"] = round(self.shipped.gzip_size_bytes / self.dense.gzip_size_bytes, 4)
            out["dense_float32"] = self.dense.name
        return out

    def lines(self) -> list[str]:
        line = f"prune: {self.overall_sparsity:.1%} of prunable weights are zero"
        if self.shipped is not None:
            ratio = round(self.shipped.gzip_size_bytes / self.dense.gzip_size_bytes, 4)
            line += f"; pruned+quantized gzip is {ratio:.3f}x the dense float32 gzip"
        return [line]


def check(ctx: RunContext, options: PruneOptions) -> None:
    """Before any work: the model can be pruned and there is training data to fine-tune on.

    ``ctx``: the run context (model and data known, nothing written yet); ``options``: this stage's section.
    """
    ctx.model.require("prune", STAGE)
    ctx.require_training_data(STAGE)


def run_stage(ctx: RunContext, options: PruneOptions) -> None:
    """Prune the current model as ``options`` say and record ``<prefix>-pruned-float32``.

    ``ctx``: the :class:`converters.context.RunContext`; ``options``: the ``[prune]`` section.
    The pruned model becomes the one later stages work on.
    """
    from converters.model_files import from_keras
    from edge_sdk.manifest import manifest_path_for, write_manifest

    ctx.current.require("prune", STAGE)
    ctx.progress.say(
        f"pruning {ctx.prefix or 'model'} to {options.target_sparsity:.0%} sparsity"
        + (" (2:4 structured)" if options.structured == "2:4" else "")
        + f", fine-tuning {options.epochs} epochs"
    )
    train_x, train_y = ctx.training_data(STAGE)
    pruned = prune(
        ctx.current.model,
        train_x,
        train_y,
        options,
        progress=(ctx.progress.epochs("prune", options.epochs) or [None])[0],
    )
    pruned_loaded = from_keras(pruned.model)
    name = f"{ctx.prefix}-pruned" if ctx.prefix else "pruned"
    artifact = ctx.float32_artifact(
        pruned_loaded,
        f"{name}-float32",
        STAGE,
        ctx.current_artifact.sha256,
        sparsity=round(pruned.overall_sparsity, 4),
        nonzero_params=count_nonzero_params(pruned.model),
    )
    artifact.manifest["sparsity_report"] = pruned.report()
    write_manifest(artifact.manifest, manifest_path_for(ctx.staging / artifact.file))
    ctx.record(
        PruneComparison(
            options.target_sparsity,
            options.structured,
            round(pruned.overall_sparsity, 4),
            pruned.report(),
            dense=ctx.current_artifact,
            pruned=artifact,
        )
    )
    ctx.before_prune = ctx.current_artifact
    ctx.advance(pruned_loaded, artifact, name)
