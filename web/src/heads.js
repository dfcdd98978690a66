// The heads the page can predict with: the Python-trained one it serves, and one trained
// or loaded in the page; which one is in use. Each carries the class names of its
// outputs, so a prediction is labelled by the head that made it.
import { disposeModel } from './models.js';

/**
 * @typedef {object} Head
 * @property {object} model a tf.LayersModel
 * @property {'head'|'merged'} kind takes backbone features, or images (backbone + head)
 * @property {string[]} labels one per output, in output order
 * @property {'python'|'trained'|'file'|'tm'} source
 * @property {string} name
 * @property {{input: object, preprocessing: object, text: string}} [input] how a model with its
 *   own preprocessing (a Teachable Machine export) is fed, in manifest terms; else the manifest's
 */

export class Heads {
  /** @param {Head} python */
  constructor(python) {
    this.python = python;
    this.browser = null;
    this.useBrowser = false;
  }

  /** The head predictions use. */
  get active() {
    return this.useBrowser && this.browser ? this.browser : this.python;
  }

  /** 'browser' or 'python': which head is in use. */
  get which() {
    return this.active === this.python ? 'python' : 'browser';
  }

  /** Uses the Python head or the page's (if there is one). */
  use(which) {
    this.useBrowser = which === 'browser' && Boolean(this.browser);
  }

  /** Makes `head` the page's head and uses it; the one it replaces is disposed. */
  setBrowser(head) {
    if (this.browser) disposeModel(this.browser.model);
    this.browser = head;
    this.useBrowser = true;
  }

  /** Where the head in use comes from, as the page says it. */
  describe() {
    const h = this.active;
    if (h.source === 'python') return 'trained in Python';
    if (h.source === 'trained') return 'trained in this page';
    if (h.source === 'tm') return `Teachable Machine model from ${h.name} (${h.input.text})`;
    return `loaded from ${h.name}${h.kind === 'merged' ? ' (merged model)' : ''}`;
  }
}
