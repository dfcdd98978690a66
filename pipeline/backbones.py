"""A registry of ImageNet backbones: name -> builder, preprocessing, default cut layer.

`load_backbone` returns the network cut at an inner layer. Weights come from a Keras
file (the shared MobileNet, or any saved model/weights of the same architecture),
`imagenet` (the file Keras publishes, downloaded once into Keras's cache, then used
offline) or `none` (random init, for tests and the with-vs-without-transfer comparison).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import preprocess
from .errors import UserError


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    builder: Callable[..., object]  # (weights, input_shape) -> full tf_keras Model
    preprocessing: preprocess.Preprocessing
    default_cut: str
    keras_name_prefix: str  # how Keras names the model, to recognise a saved file
    imagenet_file: str      # Keras's ImageNet weights (with the top), under IMAGENET_URL
    imagenet_md5: str | None = None  # the hash Keras itself checks the download against, if any


def _mobilenet(alpha):
    def build(weights, input_shape):
        from tf_keras.applications import MobileNet
        return MobileNet(input_shape=input_shape, alpha=alpha, weights=weights, include_top=True)
    return build


def _mobilenet_v2(weights, input_shape):
    from tf_keras.applications import MobileNetV2
    return MobileNetV2(input_shape=input_shape, weights=weights, include_top=True)


def _vgg16(weights, input_shape):
    from tf_keras.applications import VGG16
    return VGG16(input_shape=input_shape, weights=weights, include_top=True)


def _inception_v3(weights, input_shape):
    from tf_keras.applications import InceptionV3
    return InceptionV3(input_shape=input_shape, weights=weights, include_top=True)


# Where tf_keras.applications download their ImageNet weights from; the file names below
# are the ones they use, so a file Keras cached earlier is found and one cached here serves
# Keras too.
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_MOBILENET_ALPHA_TEXT = {"0.25": "2_5", "0.5": "5_0", "0.75": "7_5", "1.0": "1_0"}

REGISTRY: dict[str, BackboneSpec] = {
    **{f"mobilenet_v1_{a}": BackboneSpec(f"mobilenet_v1_{a}", _mobilenet(float(a)), preprocess.MOBILENET,
                                         "conv_pw_13_relu", f"mobilenet_{float(a):.2f}",
                                         f"mobilenet/mobilenet_{_MOBILENET_ALPHA_TEXT[a]}_224_tf.h5")
       for a in ("0.25", "0.5", "0.75", "1.0")},
    "mobilenet_v2": BackboneSpec("mobilenet_v2", _mobilenet_v2, preprocess.MOBILENET, "out_relu", "mobilenetv2",
                                 "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    "vgg16": BackboneSpec("vgg16", _vgg16, preprocess.CAFFE, "block5_pool", "vgg16",
                          "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b"),
    "inception_v3": BackboneSpec("inception_v3", _inception_v3, preprocess.INCEPTION, "avg_pool", "inception_v3",
                                 "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                                 "9a0d58056eeedaa3f26cb7ebd46da564"),
}
DEFAULT = "mobilenet_v1_0.25"


@dataclass
class Backbone:
    spec: BackboneSpec
    full: object            # the whole network, ImageNet top included when it has one
    model: object           # the network cut at `cut`: input image -> features
    cut: str
    weights_id: str         # identifies the weights for the feature cache
    preprocessing: preprocess.Preprocessing

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.model.output_shape[1:])


def weights_fingerprint(weights: str, seed: int = 0, backbone: str | None = None) -> str:
    """A short stable id for the weights' content (so the feature cache never mixes two sets of
    weights), without loading TensorFlow unless `imagenet` must first be downloaded.

    `imagenet` is the content of the backbone's file in Keras's cache, so it is the same id
    as that file given by path: the same weights share their cached features.
    """
    if weights == "none":
        return f"none-seed{seed}"
    path = imagenet_weights_file(resolve_spec(backbone)) if weights == "imagenet" else Path(weights)
    if not path.is_file():
        raise UserError(f"{weights}: weights file not found (give a .h5/.keras path, 'imagenet' or 'none')")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256-" + h.hexdigest()


def keras_cache_dir() -> Path:
    """Keras's download cache: `$KERAS_HOME`, else `~/.keras` (Keras 3's rule; tf_keras reads
    KERAS_HOME only for its config, so the folder is passed to its get_file explicitly)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def imagenet_weights_file(spec: BackboneSpec) -> Path:
    """The backbone's ImageNet weights in Keras's cache (`<cache>/models/<file>`), downloaded
    there by Keras's own get_file the first time; a cached file is used offline as it is."""
    url = IMAGENET_URL + spec.imagenet_file
    cached = keras_cache_dir() / "models" / Path(spec.imagenet_file).name
    if cached.is_file():  # the usual case: no TensorFlow import just to fingerprint it
        return cached
    from tf_keras.utils import get_file

    with contextlib.suppress(OSError):  # else get_file would fall back to /tmp/.keras
        cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        # urllib waits forever on a stalled connection; a bound turns that into the error below
        with _socket_timeout(60):
            return Path(get_file(cached.name, url, cache_subdir="models", cache_dir=str(cached.parent.parent),
                                 file_hash=spec.imagenet_md5))
    except Exception as e:  # get_file raises a bare Exception("URL fetch failure on URL: errno -- reason")
        reason = str(e).rsplit(" -- ", 1)[-1] or type(e).__name__
        raise UserError(f"could not download the ImageNet weights for {spec.name} from {url} into {cached} "
                        f"({reason}); without internet, copy that file there, or give a local weights "
                        f"file instead: --weights PATH (a Keras .h5 of {spec.name})") from None


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def resolve_spec(name: str | None) -> BackboneSpec:
    if name is None:
        return REGISTRY[DEFAULT]
    aliases = {"mobilenet": DEFAULT, "mobilenet_v1": DEFAULT}
    key = aliases.get(name, name)
    if key not in REGISTRY:
        raise UserError(f"unknown backbone '{name}'; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def load_backbone(name: str | None, weights: str, cut: str | None = None, *, fit: str = "stretch",
                  seed: int = 0, weights_id: str | None = None) -> Backbone:
    """Load the full network, check it is the named architecture, and cut it at `cut`."""
    import tf_keras as keras

    spec = resolve_spec(name)
    keras.utils.set_random_seed(seed)
    input_shape = (spec.preprocessing.height, spec.preprocessing.width, 3)
    if weights == "imagenet":
        # the builder loads the file as Keras's own weights="imagenet" would, from the cache path
        path = imagenet_weights_file(spec)
        try:
            full = spec.builder(str(path), input_shape)
        except Exception as e:
            detail = (str(e).splitlines() or [""])[0][:200]
            raise UserError(f"{path}: not a readable ImageNet weights file for {spec.name} "
                            f"({type(e).__name__}: {detail}); delete it to download it again") from None
    elif weights == "none":
        full = spec.builder(None, input_shape)
    else:
        full = _load_file(spec, Path(weights), input_shape)
    cut = cut or spec.default_cut
    try:
        layer = full.get_layer(cut)
    except ValueError:
        names = [l.name for l in full.layers if not l.name.startswith("input")]
        raise UserError(f"{weights}: no layer named '{cut}' in {spec.name}; valid cut layers are: "
                        + ", ".join(names)) from None
    model = keras.Model(full.input, layer.output, name=f"{spec.name}_to_{cut}".replace(".", "_"))
    h, w = (int(d) for d in full.input_shape[1:3])
    prep = spec.preprocessing
    prep = preprocess.Preprocessing(h, w, prep.channel_order, prep.mean, prep.scale, prep.offset, fit)
    return Backbone(spec, full, model, cut, weights_id or weights_fingerprint(weights, seed, spec.name), prep)


def _load_file(spec: BackboneSpec, path: Path, input_shape) -> object:
    import tf_keras as keras

    if not path.is_file():
        raise UserError(f"{path}: weights file not found")
    try:
        full = keras.models.load_model(path, compile=False)
    except Exception as model_error:  # not a whole model: maybe weights only
        try:
            full = spec.builder(None, input_shape)
            full.load_weights(path)
        except Exception:
            raise UserError(f"{path}: not a Keras model or weights file for {spec.name} "
                            f"({type(model_error).__name__}: {str(model_error).splitlines()[0][:200]})") from None
    if not hasattr(full, "get_layer") or len(full.inputs) != 1 or len(full.input_shape) != 4 or full.input_shape[-1] != 3:
        raise UserError(f"{path}: expected an image model with one HxWx3 input, got input shape "
                        f"{getattr(full, 'input_shape', '?')}")
    if not full.name.startswith(spec.keras_name_prefix):
        guess = next((s.name for s in REGISTRY.values() if full.name.startswith(s.keras_name_prefix)), None)
        hint = f" (it looks like --backbone {guess})" if guess else ""
        raise UserError(f"{path}: holds model '{full.name}', not {spec.name}{hint}")
    return full


def spec_for_file(path: str | os.PathLike) -> str | None:
    """Guess the registry name of a saved full model from the name Keras stored in it."""
    try:
        import h5py
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
        if config is None:
            return None
        import json
        model_name = json.loads(config)["config"]["name"]
    except Exception:
        return None
    # longest prefix wins so mobilenet_0.25 is not read as mobilenet_0.5
    matches = [s for s in REGISTRY.values() if model_name.startswith(s.keras_name_prefix)]
    return max(matches, key=lambda s: len(s.keras_name_prefix)).name if matches else None


def init_from(backbone: Backbone, path: str | os.PathLike) -> dict:
    """Copy weights, layer by layer by name, from a related task's .h5/.keras model or weights file.

    Layers match when the name and every weight shape agree; the rest keep their weights.
    """
    import tf_keras as keras

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: --init-from file not found")
    try:
        source = keras.models.load_model(path, compile=False)
        donors = {l.name: l.get_weights() for l in _all_layers(source)}
    except Exception:
        try:
            donors = _h5_weights_by_layer(path)
        except Exception as e:
            raise UserError(f"{path}: not a Keras model or weights file ({type(e).__name__}: {e})") from None
    matched, mismatched = [], []
    for layer in backbone.full.layers:
        if not layer.weights or layer.name not in donors:
            continue
        weights = donors[layer.name]
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
            matched.append(layer.name)
        else:
            mismatched.append(layer.name)
    with_weights = [l.name for l in backbone.full.layers if l.weights]
    return {"source": path.name, "matched": matched, "shape_mismatch": mismatched,
            "not_found": [n for n in with_weights if n not in matched and n not in mismatched]}


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # nested models
            yield from _all_layers(layer)


def _h5_weights_by_layer(path: Path) -> dict:
    import h5py
    import numpy as np

    out = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        for name in group.attrs.get("layer_names", []):
            name = name.decode() if isinstance(name, bytes) else name
            g = group[name]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs.get("weight_names", [])]
            out[name] = [np.asarray(g[n]) for n in names]
    if not out:
        raise ValueError("no layer weights found")
    return out
