// web/src/fused.js in Node, on the cpu backend and on wasm (whose FusedConv2D /
// FusedDepthwiseConv2D the page runs): a random chain of the backbone's layers gives
// model.apply's output as fused ops, with fewer kernels; what the plan does not know
// (a merge, an unknown layer) has no plan, and models.js' features() then runs apply.
//   cd web && node --test test/fused.test.mjs
import assert from 'node:assert/strict';
import { describe, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { CONV_CHAIN, compilePlan, fuseRequested } from '../src/fused.js';
import { classify, features, useFusedPlans } from '../src/models.js';
import { registerConvChain } from '../src/wasm/chain.js';
import { installWasmKernels } from '../src/wasm/kernels.js';
import { compileKernels } from '../tools/wat.mjs';

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

/** A served MobileNet's form: convolutions only, each with its bias and activation (the build folds the rest in). */
function convs() {
  const input = tf.input({ shape: [19, 17, 3] });
  const dw = (seed, strides, activation = 'relu6') => tf.layers.depthwiseConv2d({ kernelSize: 3, strides, padding: 'same',
    depthwiseInitializer: tf.initializers.glorotUniform({ seed }), biasInitializer: seeded(seed).biasInitializer,
    useBias: true, activation });
  let y = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6', ...seeded(21) }).apply(input);
  y = dw(22, 1).apply(y);
  y = tf.layers.conv2d({ filters: 16, kernelSize: 1, activation: 'relu6', ...seeded(23) }).apply(y);
  y = dw(24, 2, 'linear').apply(y);
  y = tf.layers.reLU({ maxValue: 6 }).apply(y); // goes into the depthwise kernel
  y = tf.layers.conv2d({ filters: 12, kernelSize: 1, activation: 'relu', ...seeded(25) }).apply(y); // TF.js' kernel on wasm
  y = tf.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, ...seeded(26) }).apply(y);
  return tf.model({ inputs: input, outputs: y });
}

/** The page's head: flatten, a hidden relu layer, dropout, softmax. */
function head(shape, classes) {
  return tf.sequential({ layers: [
    tf.layers.flatten({ inputShape: shape }),
    tf.layers.dense({ units: 10, activation: 'relu', ...seeded(31) }),
    tf.layers.dropout({ rate: 0.5 }),
    tf.layers.dense({ units: classes, activation: 'softmax', ...seeded(32) })] });
}

const maxDiff = (a, b) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const x = () => tf.randomUniform([3, 17, 17, 3], -1, 1, 'float32', 9);

for (const backend of ['cpu', 'wasm']) {
  describe(`fused backbone on ${backend}`, () => {
    before(async () => {
      await tf.setBackend(backend);
      await tf.ready();
      if (backend === 'wasm') installWasmKernels(tf, await compileKernels()); // conv.wat and CONV_CHAIN, as the page
    });

    test('convolutions alone: one CONV_CHAIN kernel on wasm, the same bits as op by op, no intermediate kept', async () => {
      const model = convs();
      const plan = compilePlan(tf, model);
      assert.ok(plan.run && plan.chain, plan.reason);
      assert.equal(plan.kernels, 6);
      const input = tf.randomUniform([2, 19, 17, 3], -1, 1, 'float32', 27);
      const want = model.apply(input, { training: false });
      const ids = tf.engine().backend.numDataIds();
      const profile = await tf.profile(() => plan.run(input));
      const got = profile.result;
      assert.deepEqual(profile.kernels.map((k) => k.name).filter((n) => !n.endsWith('__op')),
        backend === 'wasm' ? [CONV_CHAIN] : Array(6).fill(0).map((_, i) => ([1, 3].includes(i) ? 'FusedDepthwiseConv2D' : 'FusedConv2D')));
      assert.equal(tf.engine().backend.numDataIds(), ids + 1, 'only the result is kept');
      assert.ok(maxDiff(got, want) < 1e-5, `max |diff| ${maxDiff(got, want)}`);
      if (backend === 'wasm') {
        tf.unregisterKernel(CONV_CHAIN, 'wasm');
        try {
          const opByOp = plan.run(input);
          assert.equal(maxDiff(got, opByOp), 0);
          opByOp.dispose();
        } finally {
          registerConvChain(tf);
        }
        // an input the first layer does not take goes op by op, to TF.js' own error
        assert.throws(() => plan.run(tf.zeros([1, 19, 17, 4])), /channels|depth/i);
      }
      tf.dispose([input, want, got]);
      model.dispose();
    });

    test('a head: its products as Dense runs them, the same bits as apply; classify() runs both plans', () => {
      const backbone = convs();
      const top = head(backbone.outputs[0].shape.slice(1), 3);
      const plan = compilePlan(tf, top);
      assert.ok(plan.run, plan.reason);
      assert.equal(plan.chain, false);
      assert.equal(plan.kernels, 4);
      const input = tf.randomUniform([2, 19, 17, 3], -1, 1, 'float32', 28);
      const feats = backbone.apply(input, { training: false });
      const want = top.apply(feats, { training: false });
      const got = plan.run(feats);
      assert.equal(maxDiff(got, want), 0);
      const both = classify(tf, backbone, { model: top, kind: 'head' }, input);
      assert.ok(maxDiff(both, want) < 1e-5);
      tf.dispose([input, feats, want, got, both]);
      top.dispose();
      backbone.dispose();
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
      useFusedPlans(false);
      try {
        const plain = features(tf, model, input);
        assert.ok(maxDiff(plain, want) === 0);
        plain.dispose();
      } finally {
        useFusedPlans(true);
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
