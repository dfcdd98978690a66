// Hold-to-record's pace: while held, one frame every intervalMs goes to addFrame. A tick
// that comes while the previous frame is still being added is skipped, so a slow add
// lowers the rate instead of piling frames up. No DOM: the UI starts and stops it.

export class Recorder {
  /**
   * @param {{intervalMs?: number, addFrame: (n: number) => Promise<void>,
   *   onCount?: (count: number) => void, onError?: (error: Error) => void}} options
   *   addFrame(n) grabs and adds frame n (0-based within this recording); a throw stops recording
   */
  constructor({ intervalMs = 100, addFrame, onCount = () => {}, onError = () => {} }) {
    this.intervalMs = intervalMs;
    this.addFrame = addFrame;
    this.onCount = onCount;
    this.onError = onError;
    this.timer = null;
    this.busy = false;
    this.adding = Promise.resolve(); // the frame being added, if any
    this.count = 0; // frames added in this recording
    this.skipped = 0; // ticks skipped because the previous frame was still being added
  }

  get recording() {
    return this.timer !== null;
  }

  /** Starts recording (a new count) unless it already is; the first frame is taken at once. */
  start() {
    if (this.timer !== null) return false;
    this.count = 0;
    this.skipped = 0;
    this.onCount(0);
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.tick();
    return true;
  }

  /** Stops taking frames; a frame being added still completes (and is counted). */
  stop() {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
  }

  /** Resolves once the frame being added (if any) is added or has failed. */
  settled() {
    return this.adding;
  }

  tick() {
    if (this.timer === null) return;
    if (this.busy) {
      this.skipped += 1;
      return;
    }
    this.busy = true;
    this.adding = this.add();
  }

  async add() {
    try {
      await this.addFrame(this.count);
      this.count += 1;
      this.onCount(this.count);
    } catch (e) {
      this.stop();
      this.onError(e);
    } finally {
      this.busy = false;
    }
  }
}
