// web/src/fused.js in Node, on the cpu backend and on wasm (whose FusedConv2D /
// FusedDepthwiseConv2D the page runs): a random chain of the backbone's layers gives
// model.apply's output as fused ops, with fewer kernels; what the plan does not know
// (a merge, an unknown layer) has no plan, and models.js' features() then runs apply.
//   cd web && node --test test/fused.test.mjs
import assert from 'node:assert/strict';
import { describe, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { compilePlan, fuseRequested } from '../src/fused.js';
import { features, useFusedBackbone } from '../src/models.js';

const seeded = (seed) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed }),
  biasInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + 100 }) });

/** MobileNet's pattern and the other forms the plan knows, on a 17x17x3 input. */
function chain() {
  const input = tf.input({ shape: [17, 17, 3] });
  let y = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', ...seeded(1) }).apply(input);
  y = tf.layers.reLU({ maxValue: 6 }).apply(y);
  y = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 1, padding: 'same', depthwiseInitializer:
    tf.initializers.glorotUniform({ seed: 2 }), biasInitializer: seeded(2).biasInitializer, useBias: true }).apply(y);
  y = tf.layers.reLU({ maxValue: 6 }).apply(y);
  y = tf.layers.conv2d({ filters: 12, kernelSize: 1, ...seeded(3) }).apply(y); // 1x1, linear
  y = tf.layers.reLU().apply(y); // plain relu
  y = tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }).apply(y);
  y = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', depthMultiplier: 2,
    depthwiseInitializer: tf.initializers.glorotUniform({ seed: 4 }), biasInitializer: seeded(4).biasInitializer,
    useBias: true, activation: 'relu6' }).apply(y);
  y = tf.layers.batchNormalization({ movingMeanInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 5 }),
    movingVarianceInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 2, seed: 6 }) }).apply(y);
  y = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'valid', activation: 'relu', ...seeded(7) }).apply(y);
  y = tf.layers.conv2d({ filters: 5, kernelSize: 1, activation: 'linear', ...seeded(8) }).apply(y); // stays linear
  return tf.model({ inputs: input, outputs: y });
}

const maxDiff = (a, b) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const x = () => tf.randomUniform([3, 17, 17, 3], -1, 1, 'float32', 9);

for (const backend of ['cpu', 'wasm']) {
  describe(`fused backbone on ${backend}`, () => {
    before(async () => {
      await tf.setBackend(backend);
      await tf.ready();
    });

    test('a chain of convs and activations: fused == apply within 1e-5, one kernel per conv', () => {
      const model = chain();
      const plan = compilePlan(tf, model);
      assert.ok(plan.run, plan.reason);
      // 6 convs (the ReLU layers inside them), the padding and the batch norm: 8 of 11 layers
      assert.equal(plan.kernels, 8);
      const input = x();
      const want = model.apply(input, { training: false });
      const before = tf.memory().numTensors;
      const got = plan.run(input);
      assert.equal(tf.memory().numTensors, before + 1, 'only the result is kept');
      assert.deepEqual(got.shape, want.shape);
      assert.ok(maxDiff(got, want) < 1e-5, `max |diff| ${maxDiff(got, want)}`);
      // the plan reads the variables at each run: a changed weight is seen
      const conv = model.layers[1];
      conv.kernel.write(tf.mul(conv.kernel.read(), 0.5));
      const want2 = model.apply(input, { training: false });
      const got2 = plan.run(input);
      assert.ok(maxDiff(got2, want2) < 1e-5);
      assert.ok(maxDiff(got2, got) > 1e-3, 'the weight change shows');
      tf.dispose([input, want, got, want2, got2]);
      model.dispose();
    });

    test('features() runs the plan, and model.apply with ?fuse=0', () => {
      const model = chain();
      const input = x();
      const want = model.apply(input, { training: false });
      const fused = features(tf, model, input);
      useFusedBackbone(false);
      try {
        const plain = features(tf, model, input);
        assert.ok(maxDiff(plain, want) === 0);
        plain.dispose();
      } finally {
        useFusedBackbone(true);
      }
      assert.ok(maxDiff(fused, want) < 1e-5);
      tf.dispose([input, want, fused]);
      model.dispose();
    });

    test('a graph that merges, or an unknown layer, has no plan; features() then applies the model', () => {
      const input = tf.input({ shape: [8, 8, 3] });
      const a = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', ...seeded(11) }).apply(input);
      const b = tf.layers.conv2d({ filters: 4, kernelSize: 1, ...seeded(12) }).apply(input);
      const merged = tf.model({ inputs: input, outputs: tf.layers.add().apply([a, b]) });
      const unknown = tf.sequential({ layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, ...seeded(13) }),
        tf.layers.maxPooling2d({ poolSize: 2 })] });
      for (const [model, why] of [[merged, /add.*one-input/i], [unknown, /MaxPooling2D/]]) {
        const plan = compilePlan(tf, model);
        assert.equal(plan.run, null);
        assert.match(plan.reason, why);
        const input4 = tf.randomUniform([2, 8, 8, 3], -1, 1, 'float32', 14);
        const want = model.apply(input4, { training: false });
        const got = features(tf, model, input4);
        assert.equal(maxDiff(got, want), 0);
        tf.dispose([input4, want, got]);
        model.dispose();
      }
    });
  });
}

test('?fuse=0 turns the plan off; anything else keeps it', () => {
  assert.equal(fuseRequested('?fuse=0'), false);
  assert.equal(fuseRequested(''), true);
  assert.equal(fuseRequested('?backend=wasm&fuse=1'), true);
});
