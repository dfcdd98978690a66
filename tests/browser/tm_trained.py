"""A Teachable Machine export made the way Teachable Machine's web app makes one, as a
session fixture: in Chromium, `@teachablemachine/image` 0.8.5's own code on the TF.js
1.3.1 it pins (tests/consumers, served locally) runs `createTeachable` with a local
MobileNet v1 0.25 checkpoint (the shared .h5 through the tensorflowjs converter, its
topology written as TF.js 1.3.1 reads it: see export_tm._for_tfjs_1_3), `addExample` on
a few logos per class (each drawn into a 224x224 canvas as the library's own `cropTo`
does), `train` with the web app's defaults, then its own `save` (captured with
`tf.io.withSaveHandler`) and `getMetadata()`. The three files are written as the web
app's zip holds them: model.json (its weights path renamed weights.bin), weights.bin,
metadata.json.

The model is TM's, not ours: a Sequential of [Sequential [the truncated MobileNet as a
functional "Model", Flatten], Sequential [Dense 100 relu, Dense softmax, no bias]].
`predictions` holds TM's own `predict` on the test logos (originals, then the 224x224
PNGs that `tm_model` would feed unchanged), for the comparisons."""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest

from ..harness import BRAND_TEST, BRAND_TRAIN, MOBILENET_H5, serve_folder
from .test_tm_export import LIBS, PAGE, TEST_IMAGES, _install_consumers

CLASSES = ("android", "apple", "windows")
PER_CLASS = 6  # a few examples per class, as a Teachable Machine user records them
# The web app's defaults (its "Advanced" panel): epochs 50, batch size 16, learning rate 0.001.
TRAIN_PARAMS = {"denseUnits": 100, "epochs": 50, "learningRate": 0.001, "batchSize": 16}

TRAIN_SCRIPT = """async ([checkpoint, classes, train, tests, params]) => {
  // @teachablemachine/image's cropTo (not exported by its bundle): the centre square, scaled with a canvas
  function cropTo(image, size) {
    const min = Math.min(image.width, image.height);
    const scale = size / min;
    const scaledW = Math.ceil(image.width * scale), scaledH = Math.ceil(image.height * scale);
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = size;
    canvas.getContext('2d').drawImage(image, ~~((scaledW - size) / 2) * -1, ~~((scaledH - size) / 2) * -1, scaledW, scaledH);
    return canvas;
  }
  const teachable = await tmImage.createTeachable({tfjsVersion: tf.version.tfjs, tmVersion: '2.4.x'},
    {version: 1, checkpointUrl: checkpoint, trainingLayer: 'conv_pw_13_relu'});
  teachable.setLabels(classes);
  teachable.setSeed('tfjs-transfer');
  for (let i = 0; i < classes.length; i++) {
    for (const src of train[i]) await teachable.addExample(i, cropTo(await loadImage(src), 224));
  }
  await teachable.train(params);
  let artifacts = null;
  await teachable.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
  }));
  const bytes = new Uint8Array(artifacts.weightData);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  const predictions = {};
  for (const src of tests) {
    predictions[src] = (await teachable.predict(await loadImage(src))).map((p) => [p.className, p.probability]);
  }
  return {
    model: {modelTopology: artifacts.modelTopology, format: artifacts.format, generatedBy: artifacts.generatedBy,
            convertedBy: artifacts.convertedBy, weightsManifest: [{paths: ['weights.bin'], weights: artifacts.weightSpecs}]},
    weights: btoa(binary), metadata: teachable.getMetadata(), predictions,
    tfjs: tf.version.tfjs, backend: tf.getBackend(), tensors: tf.memory().numTensors,
  };
}"""


def write_checkpoint(folder) -> None:
    """MobileNet v1 0.25 (with its top, as TM's hosted checkpoint) as a TF.js layers model
    that TF.js 1.3.1 loads: float32, one shard."""
    import tf_keras as keras

    from tfjs_transfer.convert import to_tfjs
    from tfjs_transfer.export_tm import _for_tfjs_1_3

    model = keras.models.load_model(str(MOBILENET_H5), compile=False)
    to_tfjs(model, folder, quantize=None, shard_bytes=1 << 40)
    model_json = json.loads((folder / "model.json").read_text())
    model_json["modelTopology"] = _for_tfjs_1_3(model_json["modelTopology"])
    (folder / "model.json").write_text(json.dumps(model_json))


def square_224(src, dest) -> None:
    """The image as tm_model feeds it (centre square, bilinear to 224x224) as a PNG, so that
    TM's canvas and our resize see the same pixels (a 224 square is drawn unscaled)."""
    from PIL import Image

    from tfjs_transfer.dataset import load_rgb
    from tfjs_transfer.preprocess import Preprocessing, resize
    from tfjs_transfer.tm_model import centre_square

    pixels = resize(centre_square(load_rgb(src)), Preprocessing(224, 224, scale=1 / 127, offset=-1.0))
    Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)).save(dest)


@pytest.fixture(scope="session")
def tm_trained(browser, tmp_path_factory):
    """{'folder': the export's three files, 'labels', 'tm_original' / 'tm_224': TM's own
    probabilities [4, classes] in label order on the test logos (TEST_IMAGES order) and on
    their 224 PNGs, 'png_224': those PNGs' paths, 'report': what the page returned}."""
    modules = _install_consumers()
    root = tmp_path_factory.mktemp("tm-trained")
    (root / "lib").mkdir()
    for name, rel in LIBS.items():
        shutil.copy(modules / rel, root / "lib" / name)
    write_checkpoint(root / "mobilenet")
    train = []
    for label in CLASSES:
        (root / "train" / label).mkdir(parents=True)
        picked = sorted(BRAND_TRAIN.glob(f"{label}-*"))[:PER_CLASS]
        for p in picked:
            shutil.copy(p, root / "train" / label / p.name)
        train.append([f"train/{label}/{p.name}" for p in picked])
    (root / "test" / "224").mkdir(parents=True)
    names = list(TEST_IMAGES)
    for name in names:
        shutil.copy(BRAND_TEST / name, root / "test" / name)
        square_224(BRAND_TEST / name, root / "test" / "224" / f"{name}.png")
    scripts = '<script src="lib/tf-1.3.1.min.js"></script>\n<script src="lib/teachablemachine-image.min.js"></script>'
    (root / "teach.html").write_text(PAGE.format(title="teach", scripts=scripts))
    tests = [f"test/{n}" for n in names] + [f"test/224/{n}.png" for n in names]

    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(300_000)
        with serve_folder(root) as base:
            page.goto(base + "teach.html")
            got = page.evaluate(TRAIN_SCRIPT, [base + "mobilenet/model.json", list(CLASSES), train, tests,
                                               TRAIN_PARAMS])
    finally:
        context.close()

    folder = tmp_path_factory.mktemp("tm-export") / "tm"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(got["model"]))
    (folder / "weights.bin").write_bytes(base64.b64decode(got["weights"]))
    (folder / "metadata.json").write_text(json.dumps(got["metadata"]))
    labels = got["metadata"]["labels"]

    def matrix(keys):
        return np.array([[dict(got["predictions"][k])[label] for label in labels] for k in keys])

    return {"folder": folder, "labels": labels, "tm_original": matrix(tests[:len(names)]),
            "tm_224": matrix(tests[len(names):]), "png_224": [root / t for t in tests[len(names):]],
            "report": {k: got[k] for k in ("tfjs", "backend", "tensors")}}
