// Making DOM elements in one call, for the page's UI modules (ui.js, ui-project.js).

/** An element with these properties (`dataset` merged into its data-* attributes) and children. */
export function make(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}
