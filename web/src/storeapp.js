// The project kept in IndexedDB, exported and imported as a zip (persist.js), started once
// the page has its project: the app's hooks for it (the project, the head trained here) and
// window.tfjsTransfer.store for tests.
import { startPersistence } from './persist.js';

/**
 * @param {object} deps {tf, app (manifest, project, heads), ui, projectApp (backboneKey, adopt),
 *   loadSiteProject() (the served dataset adopted as the project), refreshControls(), saveBlob(blob, name)}
 * @returns {Promise<object>} startPersistence's handle (changed(), saveNow(), current(), stats)
 */
export async function startStore({ tf, app, ui, projectApp, loadSiteProject, refreshControls, saveBlob }) {
  const persist = await startPersistence({
    tf,
    manifest: app.manifest,
    project: () => app.project,
    backboneKey: projectApp.backboneKey,
    setProject: (project) => projectApp.adopt(project),
    siteProject: async () => {
      await loadSiteProject();
      return app.project;
    },
    head: () => {
      const h = app.heads.browser;
      return h && h.source === 'trained' ? { model: h.model, labels: h.labels, hyper: h.hyper } : null;
    },
    setHead: (head) => {
      if (head) {
        app.heads.setBrowser({ model: head.model, kind: 'head', labels: head.labels, source: 'trained',
          name: 'saved with the project', hyper: head.hyper });
        ui.setHeadChoice('browser', 'trained in this page (saved with the project)');
      } else if (app.heads.browser && app.heads.browser.source === 'trained') {
        app.heads.use('python');
        ui.setHeadChoice('python');
      }
      refreshControls();
    },
    busy: () => projectApp.adding,
    message: (text, kind) => ui.showMessage(text, kind),
    saveBlob,
  });
  Object.assign(window.tfjsTransfer, {
    store: { stats: persist.stats, saveNow: () => persist.saveNow(), current: () => persist.current() },
  });
  return persist;
}
