// Cross-origin isolation where the host does not send COOP/COEP (GitHub Pages), on request:
// ?coi=1 registers coi-sw.js, which adds those headers to the site's own responses, and
// reloads once so the page is served through it; the worker then serves later visits too,
// until ?coi=0 removes it. Without isolation there is no SharedArrayBuffer and the wasm
// backend runs one thread; with it, a pool (backend.js). Opt-in, not the default: the
// reload costs a first visit a round of requests, and on the shared 2-core machine the
// bench runs on the pool was slower than one thread (README, Performance).

const WORKER = 'coi-sw.js';
const RELOADED = 'tfjs-transfer-coi-reloaded';

/** What ?coi= asks: 'on' (1), 'off' (0) or null (leave things as they are). */
export function coiRequest(search) {
  const value = new URLSearchParams(search).get('coi');
  if (value === '1') return 'on';
  if (value === '0') return 'off';
  return null;
}

/**
 * Applies ?coi= (see above).
 * @returns {Promise<boolean>} true when the page is about to reload (start nothing else)
 */
export async function isolate(win = window) {
  const sw = win.navigator.serviceWorker;
  const asked = coiRequest(win.location.search);
  if (!asked || !win.isSecureContext || !sw) return false;
  try {
    if (asked === 'off') {
      const registration = await sw.getRegistration();
      if (registration && registration.active && registration.active.scriptURL.endsWith(`/${WORKER}`)) {
        await registration.unregister();
      }
      return false;
    }
    if (win.crossOriginIsolated) return false;
    // Reloaded once already and still not isolated: the worker cannot help here; do not loop.
    if (win.sessionStorage.getItem(RELOADED)) return false;
    await sw.register(WORKER, { scope: './' });
    await sw.ready;
    win.sessionStorage.setItem(RELOADED, '1');
    win.location.reload();
    return true;
  } catch (e) {
    return false; // no worker (private mode, blocked): one thread, as the backend line says
  }
}
