// The page's entry (app.js): first cross-origin isolation through a service worker if asked
// (?coi=1, isolation.js: may reload the page once), then the app itself (main.js, its own chunk).
import { isolate } from './isolation.js';

isolate().then((reloading) => (reloading ? null : import('./main.js'))).catch((e) => {
  const status = document.getElementById('status');
  status.dataset.state = 'error';
  status.textContent = `Error: could not load the page's code: ${e.message}`;
});
