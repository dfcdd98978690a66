// The DOM of the "Your projects" section (index.html's #project-store-section): the named
// projects' selector, new / rename / delete, export and import, and the save status. It
// listens to its own controls and hands what the user did to persist.js (bindStore).

const $ = (id) => document.getElementById(id);

const el = {
  select: $('project-select'),
  newName: $('project-new-name'),
  create: $('project-new'),
  rename: $('project-rename'),
  remove: $('project-delete'),
  exportZip: $('project-export'),
  importInput: $('project-import'),
  importFolder: $('project-import-folder'),
  status: $('project-save-status'),
  notes: $('project-import-notes'),
};

/** projects: [{name, examples}] saved; current: the open project's name (listed even if unsaved). */
export function showProjects(projects, current) {
  el.select.textContent = '';
  const names = projects.map((p) => p.name);
  if (current && !names.includes(current)) projects = [{ name: current, examples: null }, ...projects];
  for (const p of projects) {
    const option = document.createElement('option');
    option.value = p.name;
    option.textContent = p.examples == null ? `${p.name} (not saved yet)` : `${p.name} (${p.examples} examples)`;
    el.select.append(option);
  }
  el.select.value = current || '';
  el.select.dataset.projects = JSON.stringify(names);
  el.select.dataset.current = current || '';
}

/** state: saved | saving | pending | error | off (no storage) */
export function setSaveStatus(state, text) {
  el.status.dataset.state = state;
  el.status.textContent = text;
  el.status.setAttribute('role', state === 'error' ? 'alert' : 'status');
}

/** What an import skipped, one line each; [] hides the list. */
export function showImportNotes(lines) {
  el.notes.textContent = '';
  el.notes.hidden = lines.length === 0;
  for (const line of lines.slice(0, 50)) {
    const li = document.createElement('li');
    li.textContent = line;
    el.notes.append(li);
  }
  if (lines.length > 50) {
    const li = document.createElement('li');
    li.textContent = `… and ${lines.length - 50} more`;
    el.notes.append(li);
  }
  el.notes.dataset.count = String(lines.length);
}

export function setEnabled(enabled) {
  for (const c of [el.select, el.newName, el.create, el.rename, el.remove, el.exportZip, el.importInput, el.importFolder]) {
    c.disabled = !enabled;
  }
}

/** The new-name box's text, trimmed; the box is emptied. */
function takeName() {
  const name = el.newName.value.trim();
  el.newName.value = '';
  return name;
}

/**
 * Listens to the section's controls: {onSelect(name), onNew(name), onRename(name),
 * onDelete(), onExport(), onImport(files)}; each may return a promise.
 */
export function bindStore(handlers) {
  el.select.addEventListener('change', () => handlers.onSelect(el.select.value));
  el.create.addEventListener('click', () => handlers.onNew(takeName()));
  el.rename.addEventListener('click', () => handlers.onRename(takeName()));
  el.remove.addEventListener('click', () => handlers.onDelete());
  el.exportZip.addEventListener('click', () => handlers.onExport());
  for (const input of [el.importInput, el.importFolder]) {
    input.addEventListener('change', async () => {
      const files = Array.from(input.files);
      input.value = '';
      if (files.length) await handlers.onImport(files);
    });
  }
}
