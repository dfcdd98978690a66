// The webcam section's DOM and its own listeners: start/stop, camera picker, mirror,
// hold-to-record (Recorder) into the selected class, live prediction (LiveLoop) with its
// frames per second. What it does to the project and which head predicts are main.js's
// (the hooks given to bindWebcam).
import { LiveLoop } from './live.js';
import { Recorder } from './recorder.js';
import { CameraError, Webcam, listCameras } from './webcam.js';

export const RECORD_INTERVAL_MS = 100; // 10 frames per second while the button is held

const $ = (id) => document.getElementById(id);

function el() {
  return {
    start: $('webcam-start'),
    select: $('webcam-select'),
    mirror: $('webcam-mirror'),
    video: $('webcam-video'),
    record: $('webcam-record'),
    count: $('webcam-count'),
    target: $('webcam-target'),
    live: $('webcam-live'),
    fps: $('webcam-fps'),
    prediction: $('webcam-prediction'),
    message: $('webcam-message'),
  };
}

/** Top classes as bars (the Predict section's look); data-result holds them as JSON, best first. */
function showRows(node, rows, frames) {
  node.textContent = '';
  rows.forEach((row, i) => {
    const div = document.createElement('div');
    div.className = i === 0 ? 'row best' : 'row';
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = row.label;
    const track = document.createElement('span');
    track.className = 'track';
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${(row.probability * 100).toFixed(1)}%`;
    track.append(bar);
    const pct = document.createElement('span');
    pct.className = 'pct';
    pct.textContent = `${(row.probability * 100).toFixed(1)}%`;
    div.append(label, track, pct);
    node.append(div);
  });
  node.dataset.result = JSON.stringify(rows);
  node.dataset.frames = String(frames);
}

/**
 * Wires the webcam section.
 * @param {{frameSize: () => number, selectedClass: () => string|null,
 *   addExamples: (label: string, items: {blob: Blob, name: string}[]) => Promise<void>,
 *   predictFrame: (canvas: HTMLCanvasElement) => Promise<{label: string, probability: number}[]|null>}} hooks
 *   predictFrame: the top classes of the head in use, or null when the page cannot predict now
 * @returns {{webcam: Webcam, recorder: Recorder, live: LiveLoop, refresh: () => void}}
 */
export function bindWebcam(hooks) {
  const e = el();
  const webcam = new Webcam(e.video);
  const serial = new Map(); // class -> the last frame number used in its names
  let recordingTo = null;
  const liveCanvas = document.createElement('canvas');

  const say = (text) => {
    e.message.hidden = !text;
    e.message.textContent = text || '';
  };
  const showCount = (n) => {
    e.count.dataset.count = String(n);
    e.count.textContent = recordingTo ? `${n} frame${n === 1 ? '' : 's'} → ${recordingTo}` : `${n} frames`;
  };
  const showTarget = () => {
    const label = hooks.selectedClass();
    e.target.textContent = label ? `Records to: ${label}` : 'Select a class to record to.';
  };

  const recorder = new Recorder({
    intervalMs: RECORD_INTERVAL_MS,
    addFrame: async () => {
      const blob = await webcam.frameBlob(hooks.frameSize());
      const n = (serial.get(recordingTo) || 0) + 1;
      serial.set(recordingTo, n);
      await hooks.addExamples(recordingTo, [{ blob, name: `webcam-${recordingTo}-${n}.jpg` }]);
    },
    onCount: showCount,
    onError: (error) => {
      if (error instanceof CameraError && error.kind === 'ended') return; // onEnded says it
      say(`Recording stopped: ${error.message} The ${recorder.count} frames already added are kept.`);
      stopRecording();
    },
  });

  const live = new LiveLoop({
    video: e.video,
    // Paused while recording: each prediction runs the backbone on the main thread, and the
    // frames being added (and their features) come first.
    predictFrame: () => (recorder.recording ? null : hooks.predictFrame(webcam.frame(hooks.frameSize(), liveCanvas))),
    onResult: (rows, stats) => {
      showRows(e.prediction, rows, stats.frames);
      e.fps.dataset.fps = stats.fps.toFixed(1);
      e.fps.dataset.ms = stats.ms.toFixed(1);
      e.fps.textContent = `${stats.fps.toFixed(1)} predictions/s (the last took ${Math.round(stats.ms)} ms)`;
    },
    onError: (error) => {
      e.live.checked = false;
      if (!(error instanceof CameraError)) say(`Live prediction stopped: ${error.message}`);
    },
  });

  function startRecording() {
    if (!webcam.running || recorder.recording) return;
    const label = hooks.selectedClass();
    if (!label) {
      say('Select a class to record to first.');
      return;
    }
    say('');
    recordingTo = label;
    e.record.dataset.recording = 'true';
    e.record.setAttribute('aria-pressed', 'true');
    recorder.start();
  }

  function stopRecording() {
    recorder.stop();
    e.record.dataset.recording = 'false';
    e.record.setAttribute('aria-pressed', 'false');
  }

  function setRunning(running) {
    e.start.textContent = running ? 'Stop camera' : 'Start camera';
    e.start.dataset.state = running ? 'on' : 'off';
    e.record.disabled = !running;
    e.live.disabled = !running;
    if (!running) {
      stopRecording();
      live.stop();
      e.live.checked = false;
    }
  }

  async function fillPicker() {
    const cameras = await listCameras();
    const current = webcam.deviceId;
    e.select.textContent = '';
    for (const camera of cameras) {
      const option = document.createElement('option');
      option.value = camera.deviceId;
      option.textContent = camera.label;
      e.select.append(option);
    }
    if (current) e.select.value = current;
  }

  async function startCamera(deviceId) {
    stopRecording();
    e.start.disabled = true;
    say('');
    try {
      await webcam.start(deviceId);
      setRunning(true);
      await fillPicker();
    } catch (error) {
      webcam.stop();
      setRunning(false);
      say(error instanceof CameraError ? error.message : `The camera could not be started: ${error.message}`);
    } finally {
      e.start.disabled = false;
    }
  }

  webcam.onEnded = async (error) => {
    const wasRecording = recorder.recording;
    setRunning(false);
    await recorder.settled(); // a frame grabbed before the camera went is still being added
    const kept = wasRecording
      ? ` Recording stopped; the ${recorder.count} frames already added to ${recordingTo} are kept.` : '';
    say(`${error.message}${kept} Press Start camera to go on.`);
  };

  e.start.addEventListener('click', () => {
    if (webcam.running) {
      webcam.stop();
      setRunning(false);
    } else {
      startCamera(e.select.value);
    }
  });
  e.select.addEventListener('change', () => {
    if (webcam.running) startCamera(e.select.value);
  });
  e.mirror.addEventListener('change', () => webcam.setMirror(e.mirror.checked));
  e.live.addEventListener('change', () => {
    if (e.live.checked && webcam.running) live.start();
    else live.stop();
  });

  // Hold to record: pointer down until it is released (captured, so that the page's layout
  // moving under a held pointer as examples are added does not stop it); Space while focused.
  e.record.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    e.record.setPointerCapture(event.pointerId);
    startRecording();
  });
  for (const type of ['pointerup', 'lostpointercapture', 'pointercancel', 'blur']) e.record.addEventListener(type, stopRecording);
  e.record.addEventListener('keydown', (event) => {
    if (event.code !== 'Space' && event.key !== ' ') return;
    event.preventDefault();
    if (!event.repeat) startRecording();
  });
  e.record.addEventListener('keyup', (event) => {
    if (event.code === 'Space' || event.key === ' ') stopRecording();
  });
  e.record.addEventListener('contextmenu', (event) => event.preventDefault()); // a long touch
  window.addEventListener('blur', stopRecording);

  webcam.setMirror(e.mirror.checked);
  setRunning(false);
  showCount(0);
  showTarget();
  return { webcam, recorder, live, refresh: showTarget };
}
