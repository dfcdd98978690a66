// Live prediction's loop: one prediction per new video frame, one in flight at a time (the
// next frame is asked for only when the last prediction is done, so frames that arrive
// meanwhile are dropped), and the predictions per second over the last FPS_WINDOW_MS.
// No DOM beyond the video whose frames pace it.

const FPS_WINDOW_MS = 2000;

/** Predictions per second from completion times (ms, ascending) within the window ending at now. */
export function framesPerSecond(times, now, windowMs = FPS_WINDOW_MS) {
  const recent = times.filter((t) => t > now - windowMs);
  if (recent.length < 2) return 0;
  return ((recent.length - 1) * 1000) / (recent[recent.length - 1] - recent[0]);
}

export class LiveLoop {
  /**
   * @param {{video: HTMLVideoElement, predictFrame: () => Promise<any>,
   *   onResult: (result: any, stats: {fps: number, frames: number, ms: number}) => void, onError: (e: Error) => void}} options
   *   predictFrame returns null to skip a frame (nothing to predict with yet)
   */
  constructor({ video, predictFrame, onResult, onError }) {
    this.video = video;
    this.predictFrame = predictFrame;
    this.onResult = onResult;
    this.onError = onError;
    this.running = false;
    this.frames = 0;
    this.times = [];
    this.durations = []; // the last 100 predictions' ms (frame grab to probabilities read back)
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.frames = 0;
    this.times = [];
    this.durations = [];
    this.next();
  }

  stop() {
    this.running = false;
  }

  /** Waits for the video's next frame (requestVideoFrameCallback, else the next paint). */
  next() {
    if (!this.running) return;
    const run = () => this.step();
    if (typeof this.video.requestVideoFrameCallback === 'function') this.video.requestVideoFrameCallback(run);
    else requestAnimationFrame(run);
  }

  async step() {
    if (!this.running) return;
    try {
      const started = performance.now();
      const result = await this.predictFrame();
      if (!this.running) return;
      if (result != null) {
        const now = performance.now();
        this.frames += 1;
        this.times.push(now);
        this.times = this.times.filter((t) => t > now - FPS_WINDOW_MS);
        this.durations = [...this.durations.slice(-99), now - started];
        this.onResult(result, { fps: framesPerSecond(this.times, now), frames: this.frames, ms: now - started });
      }
    } catch (e) {
      this.running = false;
      this.onError(e);
      return;
    }
    this.next();
  }
}
