// The project's DOM: the class list (add, select, rename, delete a class), the thumbnails
// of each class with a remove button per example, adding images (files, a folder, a drop,
// a paste), clear and the two ways to start. It listens to its own controls and hands
// what the user did to the app (bindProject); it only reads the project.
import { groupByFolder } from './folders.js';
import { make } from './dom.js';

const $ = (id) => document.getElementById(id);

const el = {
  section: $('project-section'),
  fromSite: $('project-from-site'),
  startEmpty: $('project-start-empty'),
  clear: $('project-clear'),
  addClassForm: $('add-class-form'),
  newClassName: $('new-class-name'),
  addClass: $('add-class'),
  addFiles: $('add-files'),
  addFolder: $('add-folder'),
  progress: $('project-progress'),
  classList: $('class-list'),
  gallery: $('gallery'),
};

let selected = null; // the class new examples go to
const thumbUrls = new Map(); // example id -> object URL of its Blob, revoked when it leaves

/** The class new examples go to, or null when the project has none. */
export function selectedClass() {
  return selected;
}

/** Selects a class (or the first one when `name` is not a class any more). */
function select(project, name) {
  selected = project.classes.includes(name) ? name : (project.classes[0] ?? null);
}

/** The class list: one row per class with its count, the selected one marked. */
export function showClasses(project, name = selected) {
  select(project, name);
  const counts = project.classes.map((c) => ({ name: c, count: 0 }));
  const index = new Map(project.classes.map((c, i) => [c, i]));
  for (const e of project.examples) counts[index.get(e.label)].count++;
  el.classList.textContent = '';
  for (const { name: c, count } of counts) {
    const isSelected = c === selected;
    el.classList.append(make('li', { className: isSelected ? 'selected' : '', dataset: { class: c, count: String(count) } }, [
      make('button', { type: 'button', className: 'class-name', textContent: `${c} (${count})`,
        title: 'new examples go to the selected class', dataset: { testid: 'select-class' } }),
      make('button', { type: 'button', textContent: 'Rename', dataset: { testid: 'rename-class' } }),
      make('button', { type: 'button', textContent: 'Delete', dataset: { testid: 'delete-class' } }),
    ]));
    el.classList.lastChild.firstChild.setAttribute('aria-pressed', String(isSelected));
  }
  el.classList.dataset.classes = JSON.stringify(counts);
  el.classList.dataset.selected = selected ?? '';
  if (!counts.length) el.classList.append(make('li', { className: 'muted', textContent: 'No classes yet: add one.' }));
}

function thumbSrc(example) {
  if (typeof example.src === 'string') return example.src;
  if (!thumbUrls.has(example.id)) thumbUrls.set(example.id, URL.createObjectURL(example.src));
  return thumbUrls.get(example.id);
}

function thumb(example) {
  return make('span', { className: 'thumb', dataset: { exampleId: example.id } }, [
    make('img', { src: thumbSrc(example), alt: `${example.label}: ${example.name}`, title: `${example.name} (${example.role})`,
      loading: 'lazy', decoding: 'async', width: 64, height: 64, className: `role-${example.role}` }),
    make('button', { type: 'button', className: 'remove', textContent: '×', title: `remove ${example.name}`,
      dataset: { testid: 'remove-example' } }),
  ]);
}

function groupTitle(label, examples) {
  const roles = new Map();
  for (const e of examples) roles.set(e.role, (roles.get(e.role) || 0) + 1);
  const detail = roles.size > 1 ? `: ${[...roles].map(([k, n]) => `${n} ${k}`).join(', ')}` : '';
  return `${label} (${examples.length}${detail})`;
}

function group(label) {
  return [...el.gallery.children].find((g) => g.dataset.label === label);
}

/** Thumbnails grouped by class, with counts by role; drawn again from scratch. */
export function showGallery(project) {
  const kept = new Set(project.examples.map((e) => e.id));
  for (const [id, url] of thumbUrls) {
    if (!kept.has(id)) {
      URL.revokeObjectURL(url);
      thumbUrls.delete(id);
    }
  }
  el.gallery.textContent = '';
  for (const [label, examples] of project.byClass()) el.gallery.append(newGroup(label, examples));
}

function newGroup(label, examples) {
  return make('div', { className: 'group', dataset: { label, count: String(examples.length) } }, [
    make('h3', { textContent: groupTitle(label, examples) }),
    make('div', { className: 'thumbs' }, examples.map(thumb)),
  ]);
}

/** Adds the thumbnails of examples just added, without drawing the others again. */
export function appendThumbs(project, examples) {
  const groups = project.byClass();
  for (const label of new Set(examples.map((e) => e.label))) {
    if (!groups.has(label)) continue; // deleted meanwhile
    const g = group(label);
    if (!g) { // a class's first examples: its group alone, in class order (not the whole gallery again)
      const later = project.classes.slice(project.classes.indexOf(label) + 1).map(group).find(Boolean);
      el.gallery.insertBefore(newGroup(label, groups.get(label)), later || null);
      continue;
    }
    g.querySelector('.thumbs').append(...examples.filter((e) => e.label === label).map(thumb));
    g.dataset.count = String(groups.get(label).length);
    g.querySelector('h3').textContent = groupTitle(label, groups.get(label));
  }
}

/** Class list and thumbnails. */
export function showProject(project, name = selected) {
  showClasses(project, name);
  showGallery(project);
}

/** Empties the new class name's input (the class was added). */
export function clearNewClassName() {
  el.newClassName.value = '';
}

/** What adding examples is doing ('' when idle). */
export function setProjectProgress(text) {
  el.progress.textContent = text;
}

/** Enables the project's controls for the app's state. */
export function setProjectBusy({ ready, training, hasSite }) {
  for (const control of [el.startEmpty, el.clear, el.addClass, el.addFiles, el.addFolder]) control.disabled = !ready || training;
  el.fromSite.disabled = !ready || training || !hasSite;
}

/** Every file under a dropped entry (folders walked), as {file, path}. */
async function filesOf(entry, out = []) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: entry.fullPath.replace(/^\//, '') });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await filesOf(child, out);
    }
  }
  return out;
}

function rename(row, handlers) {
  const from = row.dataset.class;
  const input = make('input', { value: from, maxLength: 100, dataset: { testid: 'rename-input' } });
  input.setAttribute('aria-label', `new name for ${from}`);
  const button = row.querySelector('.class-name');
  button.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (commit) => {
    if (done) return;
    done = true;
    if (commit && input.value !== from) handlers.onRenameClass(from, input.value);
    else input.replaceWith(button);
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') finish(true);
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
}

/**
 * Listens to the project's controls: {onAddClass(name), onSelectClass(name),
 * onRenameClass(from, to), onDeleteClass(name), onRemoveExample(id), onClear(),
 * onStartEmpty(), onStartFromSite(), onAddGroups(Map(class|null -> [{blob, name}]), hidden)}.
 */
export function bindProject(handlers) {
  el.addClassForm.addEventListener('submit', (e) => {
    e.preventDefault();
    handlers.onAddClass(el.newClassName.value);
  });
  el.classList.addEventListener('click', (e) => {
    const row = e.target.closest('li[data-class]');
    const action = e.target.dataset.testid;
    if (!row || !action) return;
    if (action === 'select-class') handlers.onSelectClass(row.dataset.class);
    else if (action === 'rename-class') rename(row, handlers);
    else if (action === 'delete-class') handlers.onDeleteClass(row.dataset.class);
  });
  el.gallery.addEventListener('click', (e) => {
    if (e.target.dataset.testid !== 'remove-example') return;
    handlers.onRemoveExample(e.target.closest('[data-example-id]').dataset.exampleId);
  });
  el.clear.addEventListener('click', () => handlers.onClear());
  el.startEmpty.addEventListener('click', () => handlers.onStartEmpty());
  el.fromSite.addEventListener('click', () => handlers.onStartFromSite());
  el.addFiles.addEventListener('change', () => {
    const items = Array.from(el.addFiles.files, (f) => ({ blob: f, name: f.name }));
    el.addFiles.value = '';
    if (items.length) handlers.onAddGroups(new Map([[selected, items]]), 0);
  });
  el.addFolder.addEventListener('change', () => {
    const entries = Array.from(el.addFolder.files, (f) => ({ file: f, path: f.webkitRelativePath || f.name }));
    el.addFolder.value = '';
    const { groups, hidden } = groupByFolder(entries, selected, true);
    handlers.onAddGroups(groups, hidden);
  });
  // A drop on the class list: dropped folders become classes; files go to the row they
  // were dropped on, else to the selected class.
  for (const type of ['dragenter', 'dragover']) {
    el.classList.addEventListener(type, (e) => { e.preventDefault(); el.classList.classList.add('over'); });
  }
  el.classList.addEventListener('dragleave', () => el.classList.classList.remove('over'));
  el.classList.addEventListener('drop', async (e) => {
    e.preventDefault();
    e.stopPropagation();
    el.classList.classList.remove('over');
    const row = e.target.closest('li[data-class]');
    const target = row ? row.dataset.class : selected;
    // entries must be taken while the drop event runs; they are read afterwards
    const entries = Array.from(e.dataTransfer.items || [], (item) => (item.kind === 'file' ? item.webkitGetAsEntry() : null));
    const files = Array.from(e.dataTransfer.files || []);
    let found = [];
    if (entries.some(Boolean)) {
      for (const entry of entries.filter(Boolean)) await filesOf(entry, found);
    } else {
      found = files.map((f) => ({ file: f, path: f.name }));
    }
    const { groups, hidden } = groupByFolder(found, target, false);
    handlers.onAddGroups(groups, hidden);
  });
  // A paste while the project section has focus adds to the selected class (elsewhere
  // on the page a paste is predicted).
  el.section.addEventListener('paste', (e) => {
    const files = Array.from(e.clipboardData ? e.clipboardData.files : []);
    if (!files.length) return;
    e.preventDefault();
    e.stopPropagation();
    handlers.onAddGroups(new Map([[selected, files.map((f, i) => ({ blob: f, name: f.name || `pasted-${i + 1}.png` }))]]), 0);
  });
}
