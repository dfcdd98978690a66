// Cross-origin isolation for hosts that cannot send COOP/COEP headers (GitHub Pages):
// this service worker re-serves the site's own responses with those headers, so after
// one reload the page is cross-origin isolated and the wasm backend gets its threads.
// The approach of the coi-serviceworker project, in our own few lines. Registered by
// src/isolation.js when the page is opened with ?coi=1; ?coi=0 removes it.
// Only same-origin requests are touched: the site fetches nothing from elsewhere.

const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};
// Responses that cannot be rebuilt with a body (and opaque ones, status 0) pass as they are.
const AS_IS = new Set([0, 101, 204, 205, 304]);

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
  event.respondWith(fetch(request).then((response) => {
    if (AS_IS.has(response.status)) return response;
    const headers = new Headers(response.headers);
    for (const [name, value] of Object.entries(HEADERS)) headers.set(name, value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }));
});
