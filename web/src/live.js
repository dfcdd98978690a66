// Live prediction's loop: one prediction per new video frame, one in flight at a time, and the
// predictions per second over the last FPS_WINDOW_MS. Every frame the video presents is
// noted; a prediction that ends after a newer frame came starts the next one at once (on the
// latest frame) instead of waiting for the frame after, so a prediction slower than the
// camera's frame interval costs only the frames it overlaps, not every other one.
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
    this.videoFrames = 0;
    this.busy = false;
    this.fresh = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.frames = 0;
    this.videoFrames = 0; // frames the video presented while running
    this.times = [];
    this.durations = [];
    this.busy = false;
    this.fresh = false; // a frame came that no prediction has started on yet
    this.watch();
  }

  stop() {
    this.running = false;
  }

  /** Notes every new video frame (requestVideoFrameCallback, else each paint) while running. */
  watch() {
    const onFrame = () => {
      if (!this.running) return;
      this.videoFrames += 1;
      this.fresh = true;
      if (!this.busy) this.step();
      this.watch();
    };
    if (typeof this.video.requestVideoFrameCallback === 'function') this.video.requestVideoFrameCallback(onFrame);
    else requestAnimationFrame(onFrame);
  }

  async step() {
    if (!this.running) return;
    this.busy = true;
    this.fresh = false;
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
    } finally {
      this.busy = false;
    }
    if (this.fresh) this.step(); // a newer frame is already there
  }
}
