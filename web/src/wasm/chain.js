// A backbone's convolutions as one kernel (fused.js' plan of a chain of them).
//
// Op by op, every convolution pays TF.js' op machinery (the fused op's checks and gradient
// wrapper, the engine's tensor and scope bookkeeping) on top of its kernel: at batch 1, where
// a MobileNet 0.25's kernels are small, that is a large part of a prediction. This kernel
// runs the backend's own FusedConv2D / FusedDepthwiseConv2D kernel functions (conv.js' where
// they take the layer) one after the other on the layer's attributes, and frees each
// intermediate output as soon as the next layer has read it: the same kernels on the same
// values, so the same bits as op by op, and a lower peak of memory than a tidy that keeps
// every activation to its end. Inference only: it has no gradient.

import { CONV_CHAIN } from '../fused.js';
import { BACKEND } from './replace.js';

const KERNELS = { conv: 'FusedConv2D', depthwise: 'FusedDepthwiseConv2D' };

/**
 * Registers CONV_CHAIN on the wasm backend. Inputs: x, then filter0, bias0, filter1, ... ;
 * attrs.layers: one {depthwise, strides, pad, dilations, activation} per convolution.
 * @returns {boolean} whether it is in place
 */
export function registerConvChain(tf) {
  if (tf.getKernel(CONV_CHAIN, BACKEND)) return true;
  if (!tf.getKernel(KERNELS.conv, BACKEND) || !tf.getKernel(KERNELS.depthwise, BACKEND)) return false;
  tf.registerKernel({
    kernelName: CONV_CHAIN,
    backendName: BACKEND,
    kernelFunc: ({ inputs, backend, attrs }) => {
      let x = inputs.x;
      attrs.layers.forEach((layer, i) => {
        // looked up at each run: conv.js may replace the kernels after this is registered
        const { kernelFunc } = tf.getKernel(layer.depthwise ? KERNELS.depthwise : KERNELS.conv, BACKEND);
        const y = kernelFunc({ inputs: { x, filter: inputs[`filter${i}`], bias: inputs[`bias${i}`] }, backend,
          attrs: { strides: layer.strides, pad: layer.pad, dataFormat: 'NHWC', dilations: layer.dilations,
            dimRoundingMode: undefined, activation: layer.activation } });
        if (x !== inputs.x) backend.disposeData(x.dataId);
        x = y;
      });
      return x;
    },
  });
  return true;
}
