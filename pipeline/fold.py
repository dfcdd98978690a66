"""Inference-time rewrite of the backbone before conversion: fewer, cheaper layers.

In the browser, TF.js runs a Keras graph layer by layer: each inference-mode
BatchNormalization is a separate pass over the activations, and each
ZeroPadding2D((0, 1), (0, 1)) before a stride-2 convolution another copy: a large share
of MobileNet's feature-extraction time on the wasm backend (README, performance). Both
fold away exactly:

  * conv -> batch-norm becomes one conv with kernel * s and bias (b - mean) * s + beta,
    where s = gamma / sqrt(var + eps) (per output channel);
  * ZeroPadding2D((0, 1), (0, 1)) -> 3x3 stride-2 'valid' conv on an even-sized input is
    a 'same' conv (TF and TF.js pad 'same' by 0 before and 1 after there).

The graph is rebuilt node by node without the folded layers (their consumers take the
conv's output), so any graph shape works: chains (MobileNet v1), residual adds
(MobileNet v2) and branches (InceptionV3); every other layer keeps its name. Leaving
identity placeholders would cost a copy each in the page: TF.js layers clone the output
of a layer that returns its input.
Folding is valid because the backbone only runs in inference mode after training
(fine-tuning freezes batch-norm). The build checks the folded model against the
original on real images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .inference import predict_batches


@dataclass
class FoldReport:
    batch_norms: int = 0
    paddings: int = 0
    layers_before: int = 0
    max_abs_diff: float | None = None
    max_abs_value: float | None = None   # the original's largest |feature| on the check inputs
    folded: list[str] = field(default_factory=list)

    def to_manifest(self) -> dict:
        return {"batch_norms_folded": self.batch_norms, "paddings_folded": self.paddings,
                "layers_before": self.layers_before, "max_abs_diff": self.max_abs_diff,
                "max_abs_value": self.max_abs_value}

    def relative_error(self) -> float:
        if self.max_abs_diff is None:
            return 0.0
        return self.max_abs_diff / max(1.0, self.max_abs_value or 0.0)


def _consumers(model) -> dict:
    """layer name -> names of the layers that take its output, within the model."""
    out: dict[str, list[str]] = {l.name: [] for l in model.layers}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for inbound in node.inbound_layers if isinstance(node.inbound_layers, list) else [node.inbound_layers]:
                if inbound.name in out:
                    out[inbound.name].append(layer.name)
    return out


def _only_input(layer):
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        return None
    inbound = nodes[0].inbound_layers
    if isinstance(inbound, list):
        return inbound[0] if len(inbound) == 1 else None
    return inbound


def plan(model) -> tuple[dict, dict]:
    """Which batch-norms fold into which conv, and which paddings into which conv."""
    import tf_keras as keras

    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)  # DepthwiseConv2D is no Conv2D in tf_keras
    consumers = _consumers(model)
    bn_into: dict[str, str] = {}     # batch-norm name -> conv name
    pad_into: dict[str, str] = {}    # padding name -> conv name
    for layer in model.layers:
        src = _only_input(layer)
        if src is None or consumers.get(src.name) != [layer.name]:
            continue
        if (isinstance(layer, keras.layers.BatchNormalization) and isinstance(src, convs)
                and layer.axis in ([3], [-1], 3, -1) and src.get_config().get("activation") == "linear"):
            bn_into[layer.name] = src.name
        if (isinstance(src, keras.layers.ZeroPadding2D) and isinstance(layer, convs)
                and tuple(map(tuple, src.padding)) == ((0, 1), (0, 1)) and layer.padding == "valid"
                and tuple(layer.strides) == (2, 2) and tuple(layer.kernel_size) == (3, 3)
                and tuple(layer.dilation_rate) == (1, 1)
                and all(d is not None and int(d) % 2 == 0 for d in src.input_shape[1:3])):
            pad_into[src.name] = layer.name
    return bn_into, pad_into


def batch_norm_layout(bn) -> tuple[list[np.ndarray], int, float]:
    """A batch-norm's weights, the index of moving_mean in them (moving_variance follows),
    and epsilon: gamma and beta come first, each only when the layer has it."""
    cfg = bn.get_config()
    return bn.get_weights(), int(cfg["scale"]) + int(cfg["center"]), cfg["epsilon"]


def output_channels_last(conv, kernel: np.ndarray) -> np.ndarray:
    """The kernel with output channels on the last axis: (kh, kw, c_in, c_out) as is, a
    depthwise (kh, kw, c_in, multiplier) as (kh, kw, c_in * multiplier); reshape back after."""
    import tf_keras as keras

    if isinstance(conv, keras.layers.DepthwiseConv2D):
        return kernel.reshape(kernel.shape[0], kernel.shape[1], -1)
    return kernel


def feature_difference(model, other, inputs: np.ndarray) -> tuple[float, float]:
    """max |other - model| and max |model| on inputs: how far a rewrite moved the outputs."""
    reference = predict_batches(model, inputs, 8)
    return (float(np.max(np.abs(predict_batches(other, inputs, 8) - reference))),
            float(np.max(np.abs(reference))))


def _rebuild(model, clone, skip: set[str]):
    """The functional graph of `model` built again, node by node in depth order, with
    clone(layer) for each layer, except the single-input layers named in `skip`: whatever
    consumed their output takes their input instead."""
    import tensorflow as tf
    import tf_keras as keras

    new: dict[int, object] = {}   # id(the model's KerasTensor) -> the rebuilt graph's tensor
    inputs = []
    for t in model.inputs:
        x = keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t._keras_history.layer.name)
        new[id(t)] = x
        inputs.append(x)
    made: dict[str, object] = {}
    swap = lambda v: new.get(id(v), v)  # noqa: E731
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            layer = node.layer
            args = tf.nest.map_structure(swap, node.call_args)
            kwargs = tf.nest.map_structure(swap, node.call_kwargs)
            if layer.name in skip:
                out = args[0]
            else:
                if layer.name not in made:
                    made[layer.name] = clone(layer)
                out = made[layer.name](*args, **kwargs)
            for old, rebuilt in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(out)):
                new[id(old)] = rebuilt
    outputs = [new[id(t)] for t in model.outputs]
    return keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)


def _folded_weights(conv, bn) -> list[np.ndarray]:
    bn_weights, i, eps = batch_norm_layout(bn)
    mean, var = bn_weights[i], bn_weights[i + 1]
    channels = mean.shape[0]
    gamma = bn_weights[0] if bn.get_config()["scale"] else np.ones(channels, np.float32)
    shift = bn_weights[i - 1] if bn.get_config()["center"] else np.zeros(channels, np.float32)
    scale = gamma / np.sqrt(var + eps)
    weights = conv.get_weights()
    kernel = weights[0]
    bias = weights[1] if conv.use_bias else np.zeros(channels, np.float32)
    kernel = (output_channels_last(conv, kernel) * scale).reshape(kernel.shape)
    return [kernel.astype(np.float32), ((bias - mean) * scale + shift).astype(np.float32)]


def fold_batch_norms(model, check_inputs: np.ndarray | None = None) -> tuple[object, FoldReport]:
    """A copy of `model` with batch-norms and paddings folded into convs (see the module
    docstring), and a report. With check_inputs, the report holds max |folded - original|."""
    import tf_keras as keras

    bn_into, pad_into = plan(model)
    report = FoldReport(layers_before=len(model.layers))
    if not bn_into and not pad_into:
        return model, report
    conv_with_bn = {conv: bn for bn, conv in bn_into.items()}
    conv_with_pad = set(pad_into.values())

    def clone(layer):
        config = layer.get_config()
        if layer.name in conv_with_bn:
            config["use_bias"] = True
        if layer.name in conv_with_pad:
            config["padding"] = "same"
        return layer.__class__.from_config(config)

    folded = _rebuild(model, clone, skip={*bn_into, *pad_into})
    by_name = {l.name: l for l in model.layers}
    for new in folded.layers:
        old = by_name[new.name]
        if new.name in conv_with_bn:
            new.set_weights(_folded_weights(old, by_name[conv_with_bn[new.name]]))
        elif old.weights and new.weights:
            new.set_weights(old.get_weights())
    folded.trainable = False
    report.batch_norms, report.paddings = len(bn_into), len(pad_into)
    report.folded = sorted([*bn_into, *pad_into])
    if check_inputs is not None:
        report.max_abs_diff, report.max_abs_value = feature_difference(model, folded, check_inputs)
    return folded, report
