// Yielding to the page between steps of a long job, so that input events (the Stop button)
// and rendering run in between.

/**
 * Resolves in a new macrotask (a MessageChannel message), not at the next frame:
 * tf.nextFrame() after every batch would leave the page idle for a frame each time.
 */
export function yieldToPage() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
