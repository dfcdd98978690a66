// The backbone as fused ops: a layers model that is a plain chain of convolutions and
// activations (MobileNet as served: Conv2D / DepthwiseConv2D, each then ReLU(max_value 6))
// runs as one tf.fused.conv2d / tf.fused.depthwiseConv2d per convolution, its bias and
// relu/relu6 inside the kernel. Layer by layer, TF.js runs the depthwise bias as its own Add
// and ReLU(6) as Relu then ClipByValue, each one more pass over the activations.
// Anything the plan does not know (other layers, graphs that branch or merge) gives no plan:
// the caller runs model.apply. The plan reads the layers' own variables at each run (no copies).
// A head (Flatten, Dense, Dropout) runs the same way: its products without the layers'
// machinery around each (Dense's reshapes, Dropout's identity), as Dense itself runs them.
// A plan of convolutions alone (a MobileNet as served: its batch norms and paddings folded in
// by the build) runs as one kernel, CONV_CHAIN, where the backend has it (wasm/chain.js).

/** The kernel that runs a chain of fused convolutions as one (registered by wasm/chain.js). */
export const CONV_CHAIN = 'TfjsTransferConvChain';

/** ?fuse=0 runs the backbone layer by layer (model.apply): the "before" of the fused plan. */
export function fuseRequested(search) {
  return new URLSearchParams(search).get('fuse') !== '0';
}

// Activations the fused kernels take (FusedConv2D / FusedDepthwiseConv2D on every backend).
const FUSABLE = new Set(['linear', 'relu', 'relu6']);
// Those TF.js' Dense layer runs inside its product (_FusedMatMul), the rest after it.
const DENSE_FUSABLE = new Set(['linear', 'relu']);

/** The layers from the model's input to its output, or {reason} when it is not one chain. */
function chainOf(model) {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    return { reason: `${model.inputs.length} inputs, ${model.outputs.length} outputs` };
  }
  const input = model.inputs[0];
  const layers = [];
  for (let t = model.outputs[0]; t !== input;) {
    const layer = t.sourceLayer;
    const node = layer.inboundNodes[t.nodeIndex];
    if (!node || node.inputTensors.length !== 1 || node.outputTensors.length !== 1) {
      return { reason: `layer ${layer.name} (${layer.getClassName()}) is not a one-input, one-output step` };
    }
    layers.unshift(layer);
    t = node.inputTensors[0];
  }
  return { layers };
}

const pairOf = (v) => (Array.isArray(v) ? v : [v, v]);
const activationName = (layer) => (layer.activation ? layer.activation.getClassName() : 'linear');

/** One layer as a step {conv?, fuses?, run(x)}, or a string saying why it cannot be one. */
function stepOf(tf, layer) {
  const cls = layer.getClassName();
  const channelsLast = layer.dataFormat == null || layer.dataFormat === 'channelsLast';
  switch (cls) {
    case 'Conv2D':
    case 'DepthwiseConv2D': {
      if (!channelsLast) return `${layer.name}: data format ${layer.dataFormat}`;
      const depthwise = cls === 'DepthwiseConv2D';
      // TF.js' DepthwiseConv2D ignores its dilation: the plan leaves such a layer to apply()
      if (depthwise && pairOf(layer.dilationRate).some((d) => d !== 1)) return `${layer.name}: dilated depthwise`;
      const act = activationName(layer);
      const step = {
        conv: true,
        fuses: true,
        depthwise,
        layer,
        activation: FUSABLE.has(act) ? act : 'linear',
        after: FUSABLE.has(act) ? null : layer.activation, // applied on its own
        run(x) {
          const args = { x, strides: layer.strides, pad: layer.padding, dataFormat: 'NHWC',
            dilations: depthwise ? 1 : layer.dilationRate,
            bias: layer.useBias ? layer.bias.read() : undefined, activation: this.activation };
          const y = depthwise
            ? tf.fused.depthwiseConv2d({ ...args, filter: layer.depthwiseKernel.read() })
            : tf.fused.conv2d({ ...args, filter: layer.kernel.read() });
          return this.after ? this.after.apply(y) : y;
        },
      };
      return step;
    }
    case 'Dense': {
      // as TF.js' Dense runs it (layers' core.ts): relu and linear inside the product with the
      // bias, any other activation after a product and a bias add
      let rank;
      try {
        rank = layer.input.shape.length;
      } catch (e) { // a layer used more than once
        return `${layer.name}: a shared layer`;
      }
      if (rank !== 2) return `${layer.name}: Dense on rank ${rank}`;
      const act = activationName(layer);
      return {
        fuses: true,
        activation: DENSE_FUSABLE.has(act) ? act : 'linear',
        after: DENSE_FUSABLE.has(act) ? null : layer.activation,
        run(x) {
          const bias = layer.useBias ? layer.bias.read() : undefined;
          if (!this.after) return tf.fused.matMul({ a: x, b: layer.kernel.read(), bias, activation: this.activation });
          const y = tf.matMul(x, layer.kernel.read());
          return this.after.apply(bias ? tf.add(y, bias) : y);
        },
      };
    }
    case 'Flatten':
      return { run: (x) => tf.reshape(x, [x.shape[0], -1]) };
    case 'ReLU':
      return { activation: layer.maxValue == null ? 'relu' : layer.maxValue === 6 ? 'relu6' : null,
        run: (x) => (layer.maxValue == null ? tf.relu(x) : tf.clipByValue(tf.relu(x), 0, layer.maxValue)) };
    case 'Activation': {
      const act = activationName(layer);
      return { activation: FUSABLE.has(act) ? act : null, run: (x) => layer.activation.apply(x) };
    }
    case 'ZeroPadding2D': {
      if (!channelsLast) return `${layer.name}: data format ${layer.dataFormat}`;
      const [rows, cols] = layer.padding;
      return { run: (x) => tf.pad(x, [[0, 0], rows, cols, [0, 0]]) };
    }
    case 'BatchNormalization': {
      if (![-1, 3].includes(layer.axis)) return `${layer.name}: batch norm on axis ${layer.axis}`;
      return { run: (x) => tf.batchNorm(x, layer.movingMean.read(), layer.movingVariance.read(),
        layer.center ? layer.beta.read() : undefined, layer.scale ? layer.gamma.read() : undefined, layer.epsilon) };
    }
    case 'Dropout': // inference: the identity
      return { run: (x) => x };
    default:
      return `layer ${layer.name}: ${cls}`;
  }
}

/**
 * The model's inference as fused ops: {run(x) -> Tensor, kernels: number of steps} when it
 * is a chain of known layers (convolutions channels-last, products on rank 2), else
 * {run: null, reason}.
 */
export function compilePlan(tf, model) {
  const chain = chainOf(model);
  if (!chain.layers) return { run: null, reason: chain.reason };
  const steps = [];
  for (const layer of chain.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const step = stepOf(tf, layer);
    if (typeof step === 'string') return { run: null, reason: step };
    const prev = steps[steps.length - 1];
    // an activation right after a linear convolution (or product) goes into its kernel
    if (step.activation && prev && prev.fuses && prev.activation === 'linear' && !prev.after
      && (prev.conv || DENSE_FUSABLE.has(step.activation))) {
      prev.activation = step.activation;
    } else {
      steps.push(step);
    }
  }
  const convs = steps.length > 0 && steps.every((step) => step.conv && !step.after);
  const attrs = convs ? chainAttrs(steps) : null;
  return {
    run: (x) => tf.tidy(() => (attrs && chainTakes(tf, steps, x) ? runChain(tf, steps, attrs, x)
      : steps.reduce((y, step) => step.run(y), x))),
    kernels: steps.length,
    chain: convs, // one CONV_CHAIN kernel where the backend has it
  };
}

/** Whether CONV_CHAIN runs these steps on x here: registered on the backend, x as the first layer takes it. */
function chainTakes(tf, steps, x) {
  const { depthwise, layer } = steps[0];
  const filter = depthwise ? layer.depthwiseKernel : layer.kernel;
  return x.rank === 4 && x.dtype === 'float32' && x.shape[3] === filter.shape[2]
    && !!tf.getKernel(CONV_CHAIN, tf.getBackend());
}

/** CONV_CHAIN's attributes for the steps (each a convolution, its activation inside): fixed once compiled. */
function chainAttrs(steps) {
  return { layers: steps.map(({ depthwise, layer, activation }) => ({ depthwise, strides: layer.strides,
    pad: layer.padding, dilations: depthwise ? 1 : layer.dilationRate, activation })) };
}

/** The steps as one CONV_CHAIN kernel, on the layers' weights as they are now. */
function runChain(tf, steps, attrs, x) {
  const inputs = { x };
  steps.forEach(({ depthwise, layer }, i) => {
    inputs[`filter${i}`] = (depthwise ? layer.depthwiseKernel : layer.kernel).read();
    if (layer.useBias) inputs[`bias${i}`] = layer.bias.read();
  });
  return tf.engine().runKernel(CONV_CHAIN, inputs, attrs);
}
