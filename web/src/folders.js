// Picked or dropped folders as classes: files in a class sub-folder go to that class
// (a folder's name is its class), files directly inside the chosen folder go to the
// selected class. Pure functions over paths, so Node tests them; the DOM side (input
// files, dropped entries) is in ui-project.js.

/** Names the page never treats as an example: hidden files (.DS_Store) and Thumbs.db. */
export function isHidden(path) {
  return path.split('/').some((part) => part.startsWith('.')) || /(^|\/)(Thumbs\.db|desktop\.ini)$/i.test(path);
}

/**
 * Groups files by the class their path gives them.
 * @param {{file: Blob & {name: string}, path: string}[]} entries path relative to what was
 *   picked or dropped, the picked folder first ("digits/3/a.jpg"); a dropped loose file is "a.jpg"
 * @param {string|null} selected the class that loose files go to
 * @param {boolean} rooted whether the first path part is the picked folder itself
 *   (a webkitdirectory input's paths; dropped folders are not: "3/a.jpg" dropped as folder 3)
 * @returns {{groups: Map<string, {blob: Blob, name: string}[]>, hidden: number}} classes in
 *   sorted folder-name order, then the selected class
 */
export function groupByFolder(entries, selected, rooted = true) {
  const folders = new Map();
  const loose = [];
  let hidden = 0;
  for (const { file, path } of entries) {
    const parts = path.split('/').filter(Boolean);
    if (isHidden(parts.join('/'))) {
      hidden++;
      continue;
    }
    const inside = rooted ? parts.slice(1) : parts;
    const item = { blob: file, name: parts.join('/') || file.name };
    if (inside.length >= 2) {
      if (!folders.has(inside[0])) folders.set(inside[0], []);
      folders.get(inside[0]).push(item);
    } else {
      loose.push(item);
    }
  }
  const groups = new Map([...folders].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  if (loose.length) {
    if (groups.has(selected)) groups.get(selected).push(...loose);
    else groups.set(selected, loose);
  }
  return { groups, hidden };
}
