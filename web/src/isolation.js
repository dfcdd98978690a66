// Cross-origin isolation where the host does not send COOP/COEP (GitHub Pages): registers
// coi-sw.js, which adds those headers to the site's own responses, and reloads once so
// the page is served through it. Without isolation there is no SharedArrayBuffer and the
// wasm backend runs one thread; with it, a pool (backend.js). ?coi=0 leaves the page as
// the host serves it (and removes the worker).

const WORKER = 'coi-sw.js';
const RELOADED = 'tfjs-transfer-coi-reloaded';

/** Whether the page asked to go without the service worker (?coi=0). */
export function coiOff(search) {
  return new URLSearchParams(search).get('coi') === '0';
}

/**
 * Makes the page cross-origin isolated through coi-sw.js if it is not and can be.
 * @returns {Promise<boolean>} true when the page is about to reload (start nothing else)
 */
export async function isolate(win = window) {
  const sw = win.navigator.serviceWorker;
  if (win.crossOriginIsolated || !win.isSecureContext || !sw) return false;
  try {
    if (coiOff(win.location.search)) {
      const registration = await sw.getRegistration(WORKER);
      if (registration) await registration.unregister();
      return false;
    }
    // Served through the worker and still not isolated: it cannot help here; do not loop.
    if (sw.controller && win.sessionStorage.getItem(RELOADED)) return false;
    await sw.register(WORKER, { scope: './' });
    await sw.ready;
    if (win.sessionStorage.getItem(RELOADED)) return false;
    win.sessionStorage.setItem(RELOADED, '1');
    win.location.reload();
    return true;
  } catch (e) {
    return false; // no worker (private mode, blocked): one thread, as the backend line says
  }
}
