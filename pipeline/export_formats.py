"""The Python-side export formats: Keras (3 and tf_keras), TF SavedModel, TFLite.

Each writer takes (SiteModels, out_dir, options) and returns {"files": [...], "usage": a
three-line example, "check": [how each consumer loads and runs it], "notes": {...}};
export.py registers them in FORMATS, stages, checks and places the folder.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

from .errors import UserError
from .tfquiet import stderr_captured

# The export's own check, on probabilities against the site's Keras models. Float32 formats run
# the same arithmetic (the order of a few sums may differ); float16 rounds every weight to 11
# bits. int8 quantizes weights and activations: an uncertain image's probabilities can move by
# more than half (README, Exports), so int8 is held to its top-1 class instead: a broken
# conversion agrees with the site about as often as chance.
TOLERANCE = {"float32": 1e-4, "float16": 0.05, "int8": 1.0}
MIN_TOP1_AGREEMENT = {"float32": 1.0, "float16": 1.0, "int8": 0.75}

KERAS3_FILE = "model.keras"
TF_KERAS_FILE = "model.h5"
SAVEDMODEL_DIR = "saved_model"


def keras3_config(tf_keras_model) -> dict:
    """The tf_keras model's config in a form Keras 3's `Model.from_config` accepts: Keras 3 took
    `groups` out of DepthwiseConv2D (always 1 there); everything else in MobileNet/VGG/Inception
    heads and backbones reads as is."""
    config = json.loads(tf_keras_model.to_json())["config"]
    for layer in config["layers"]:
        if layer["class_name"] == "DepthwiseConv2D":
            layer["config"].pop("groups", None)
    return config


def write_keras(models, out: Path, options: dict) -> dict:
    """model.keras for Keras 3 (the architecture rebuilt there from the tf_keras config, weights
    copied by layer name; a tf_keras .h5 with DepthwiseConv2D does not load in Keras 3) and
    model.h5 for tf_keras / TF 2.15 and older."""
    import keras

    merged = models.merged()
    with warnings.catch_warnings():  # "HDF5 is legacy": it is what TF 2.15 and older read
        warnings.simplefilter("ignore", UserWarning)
        merged.save(out / TF_KERAS_FILE, include_optimizer=False, save_format="h5")
    rebuilt = keras.Model.from_config(keras3_config(merged))
    for layer in rebuilt.layers:
        layer.set_weights(merged.get_layer(layer.name).get_weights())
    rebuilt.save(out / KERAS3_FILE)
    return {
        "files": [KERAS3_FILE, TF_KERAS_FILE],
        "usage": "import keras  # Keras 3 (model.h5: import tf_keras as keras)\n"
                 f"model = keras.saving.load_model('{KERAS3_FILE}')\n"
                 "probabilities = model.predict(images)  # images: (N, H, W, 3) float32, preprocessed as below",
        "check": [
            {"consumer": "keras 3", "path": KERAS3_FILE, "tolerance": TOLERANCE["float32"],
             "import": "import keras", "load": "model = keras.saving.load_model(path)",
             "run": "probs = np.asarray(model(x, training=False))"},
            {"consumer": "tf_keras", "path": TF_KERAS_FILE, "tolerance": TOLERANCE["float32"],
             "import": "import tf_keras",
             "load": "model = tf_keras.models.load_model(path, compile=False)",
             "run": "probs = model(x, training=False).numpy()"},
        ],
    }


def _serving_function(models):
    import tensorflow as tf

    merged = models.merged()

    @tf.function(input_signature=[tf.TensorSpec([None, *models.input_shape], tf.float32, name="images")])
    def serve(images):
        return {"probabilities": merged(images, training=False)}

    return serve


def _save_savedmodel(models, folder: Path) -> None:
    import tensorflow as tf

    serve = _serving_function(models)
    module = tf.Module()
    module.model = models.merged()
    module.serve = serve
    tf.saved_model.save(module, str(folder), signatures={"serving_default": serve})


def write_savedmodel(models, out: Path, options: dict) -> dict:
    """A TF SavedModel whose `serving_default` signature takes `images` (N, H, W, 3) float32,
    preprocessed, and returns `probabilities`."""
    _save_savedmodel(models, out / SAVEDMODEL_DIR)
    return {
        "files": [SAVEDMODEL_DIR],
        "usage": "import tensorflow as tf\n"
                 f"serve = tf.saved_model.load('{SAVEDMODEL_DIR}').signatures['serving_default']\n"
                 "probabilities = serve(images=tf.constant(images))['probabilities']  # (N, H, W, 3) float32",
        "check": [{"consumer": "tf.saved_model.load", "path": SAVEDMODEL_DIR, "tolerance": TOLERANCE["float32"],
                   "import": "import tensorflow as tf",
                   "load": "serve = tf.saved_model.load(path).signatures['serving_default']",
                   "run": "probs = serve(images=tf.constant(x))['probabilities'].numpy()"}],
    }


def write_tflite(models, out: Path, options: dict) -> dict:
    """model.tflite converted from a SavedModel of the merged model: float32, float16 weights
    (computed in float32 by the CPU interpreter), or int8 (`full integer`: every weight and
    activation in int8, calibrated on the site's training images, with float32 input and
    output so the model takes the same preprocessed images as the others)."""
    import tensorflow as tf

    from .export import REPRESENTATIVE_IMAGES

    quantize = options.get("quantize", "float32")
    with tempfile.TemporaryDirectory() as tmp:
        _save_savedmodel(models, Path(tmp) / "sm")
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "sm"))
        notes = {}
        if quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            calibration = models.images(("train",), limit=REPRESENTATIVE_IMAGES)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([x[None]] for x in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.float32
            converter.inference_output_type = tf.float32
            notes = {"representative_images": len(calibration)}
        # the converter logs its passes from C++ to fd 2 (`fully_quantize: 0, ...`): kept for
        # the error message if it fails, instead of printed
        with stderr_captured() as log:
            try:
                flatbuffer = converter.convert()
            except Exception as e:  # the converter's errors come as several classes; all are fatal here
                raise UserError(f"TFLite conversion ({quantize}) failed: {e}\n{log()[-2000:]}") from None
        (out / "model.tflite").write_bytes(flatbuffer)
    run = ("probs = np.concatenate([runner(images=x[i:i + 1])['probabilities'] for i in range(len(x))])")
    return {
        "files": ["model.tflite"],
        "usage": "import numpy as np, tensorflow as tf  # or: from ai_edge_litert.interpreter import Interpreter\n"
                 "runner = tf.lite.Interpreter('model.tflite').get_signature_runner()\n"
                 "probabilities = runner(images=image[None].astype(np.float32))['probabilities']  # image: H x W x 3",
        "check": [{"consumer": f"tf.lite.Interpreter ({quantize})", "path": "model.tflite",
                   "tolerance": TOLERANCE[quantize], "min_top1_agreement": MIN_TOP1_AGREEMENT[quantize],
                   "import": "import tensorflow as tf",
                   "load": "runner = tf.lite.Interpreter(model_path=path).get_signature_runner()",
                   "run": run}],
        "notes": notes,
    }

