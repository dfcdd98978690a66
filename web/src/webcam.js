// The camera: lists the cameras, starts and stops one on the <video> it is given, mirrors,
// and grabs square centre-cropped frames as canvases or JPEG Blobs. No other DOM (as
// tfjs-examples' webcam-transfer-learning webcam.js, with plain getUserMedia).
// Mirroring applies to the preview and to the grabbed frames alike: what is seen is what is
// recorded and predicted (Teachable Machine mirrors by default, so does this page).

/** A camera problem the page explains; kind: denied | missing | busy | insecure | ended | other. */
export class CameraError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'CameraError';
    this.kind = kind;
  }
}

const MESSAGES = {
  denied: 'Camera permission was denied: allow the camera for this page (the camera icon in the address bar, '
    + 'or the site settings), then press Start camera again.',
  missing: 'No camera found: connect one and press Start camera again, or add images from files.',
  busy: 'The camera could not be opened: another application or tab may be using it. '
    + 'Close it, then press Start camera again.',
  insecure: 'The camera is only available to a secure page (https://, or http://localhost).',
  ended: 'The camera stopped (unplugged or switched off).',
};

/** getUserMedia's and enumerateDevices' errors (DOMException names) as a CameraError. */
export function cameraError(error) {
  if (error instanceof CameraError) return error;
  const name = error && error.name;
  if (['NotAllowedError', 'SecurityError', 'PermissionDeniedError'].includes(name)) {
    return new CameraError('denied', MESSAGES.denied);
  }
  if (['NotFoundError', 'OverconstrainedError', 'DevicesNotFoundError'].includes(name)) {
    return new CameraError('missing', MESSAGES.missing);
  }
  if (['NotReadableError', 'AbortError', 'TrackStartError'].includes(name)) return new CameraError('busy', MESSAGES.busy);
  return new CameraError('other', `The camera could not be started: ${(error && error.message) || error}`);
}

function mediaDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new CameraError('insecure', MESSAGES.insecure);
  return navigator.mediaDevices;
}

/**
 * The video inputs: [{deviceId, label}]. Before the first permission the browser hides the
 * labels (and may hide the ids): those get "Camera N".
 */
export async function listCameras() {
  let devices;
  try {
    devices = await mediaDevices().enumerateDevices();
  } catch (e) {
    throw cameraError(e);
  }
  return devices.filter((d) => d.kind === 'videoinput')
    .map((d, i) => ({ deviceId: d.deviceId, label: d.label || `Camera ${i + 1}` }));
}

export class Webcam {
  /** @param {HTMLVideoElement} video the preview; the stream is attached to it */
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.mirror = true;
    this.onEnded = null; // called when the camera goes away by itself (unplugged, switched off)
    video.muted = true;
    video.playsInline = true;
    this.setMirror(true);
  }

  get running() {
    return this.stream !== null;
  }

  /** The track's device id, once started. */
  get deviceId() {
    const track = this.stream && this.stream.getVideoTracks()[0];
    return track ? track.getSettings().deviceId || '' : '';
  }

  /**
   * Starts the camera with this deviceId ('' for the browser's choice), replacing a running one.
   * @throws {CameraError}
   */
  async start(deviceId = '') {
    this.stop();
    const devices = mediaDevices();
    const cameras = await listCameras();
    if (cameras.length === 0) throw new CameraError('missing', MESSAGES.missing);
    let stream;
    try {
      stream = await devices.getUserMedia({
        audio: false,
        video: { ...(deviceId ? { deviceId: { exact: deviceId } } : {}), width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (e) {
      throw cameraError(e);
    }
    const track = stream.getVideoTracks()[0];
    if (!track) throw new CameraError('missing', MESSAGES.missing);
    // 'ended' fires when the device goes away, not on our own stop(): the stream check keeps
    // a stopped or replaced stream's late event from stopping the current one.
    track.addEventListener('ended', () => {
      if (this.stream !== stream) return;
      this.stop();
      if (this.onEnded) this.onEnded(new CameraError('ended', MESSAGES.ended));
    });
    this.stream = stream;
    this.video.srcObject = stream;
    if (this.video.readyState < 2) {
      await new Promise((resolve) => this.video.addEventListener('loadeddata', resolve, { once: true }));
    }
    await this.video.play();
  }

  stop() {
    if (!this.stream) return;
    for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.video.srcObject = null;
  }

  setMirror(on) {
    this.mirror = Boolean(on);
    this.video.style.transform = this.mirror ? 'scaleX(-1)' : '';
  }

  /**
   * The current frame's centre square, scaled to size × size and mirrored if the preview is,
   * drawn onto `canvas` (a new one by default).
   * @throws {CameraError} the camera is not running
   */
  frame(size, canvas = document.createElement('canvas')) {
    const w = this.video.videoWidth;
    const h = this.video.videoHeight;
    if (!this.stream || !w || !h) throw new CameraError('ended', 'The camera is not running.');
    const side = Math.min(w, h);
    if (canvas.width !== size) canvas.width = size;
    if (canvas.height !== size) canvas.height = size;
    // willReadFrequently: predictions read the pixels back (getImageData) on every frame
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.setTransform(this.mirror ? -1 : 1, 0, 0, 1, this.mirror ? size : 0, 0);
    ctx.drawImage(this.video, (w - side) / 2, (h - side) / 2, side, side, 0, 0, size, size);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    return canvas;
  }

  /** The current frame as frame() draws it, encoded as JPEG. */
  frameBlob(size, quality = 0.9) {
    const canvas = this.frame(size);
    return new Promise((resolve, reject) => canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error('the frame could not be encoded as JPEG'))), 'image/jpeg', quality));
  }
}
