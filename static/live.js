// The live overview: one connection to /api/v2/kiln/events shared by every view. The server
// pushes the caller's overview whenever it changes; this keeps the latest one and reconnects
// after a lost connection.

import { readEvents } from './api.js';

const RETRY_MS = 2000;

export class OverviewFeed {
  /** `onSignedOut` is called when the server says the session has ended. */
  constructor(onSignedOut) {
    this.onSignedOut = onSignedOut;
    this.listeners = new Set();
    this.status = '';
    this.latest = null;
    this.state = 'idle';
    this.running = false;
    this.controller = null;
    this.retryTimer = null;
  }

  /** `listener({type: 'overview', overview})` or `listener({type: 'state', state})`. */
  subscribe(listener) {
    this.listeners.add(listener);
    listener({ type: 'state', state: this.state });
    if (this.latest) listener({ type: 'overview', overview: this.latest });
    return () => this.listeners.delete(listener);
  }

  emit(message) {
    for (const listener of [...this.listeners]) listener(message);
  }

  setState(state) {
    this.state = state;
    this.emit({ type: 'state', state });
  }

  /** Only builds with this status word ('' for all). */
  setStatusFilter(status) {
    if (status === this.status) return;
    this.status = status;
    this.latest = null;
    if (this.running) this.reconnect();
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    this.latest = null;
    clearTimeout(this.retryTimer);
    this.controller?.abort();
    this.controller = null;
    this.setState('idle');
  }

  reconnect() {
    clearTimeout(this.retryTimer);
    this.controller?.abort();
    this.connect();
  }

  async connect() {
    const controller = new AbortController();
    this.controller = controller;
    this.setState('connecting');
    const query = this.status ? `?status=${encodeURIComponent(this.status)}` : '';
    let signedOut = false;
    try {
      await readEvents(`/kiln/events${query}`, {
        signal: controller.signal,
        onOpen: () => this.setState('live'),
        onEvent: (event) => {
          if (controller !== this.controller) return false;
          if (event.event === 'overview') {
            this.latest = JSON.parse(event.data);
            this.emit({ type: 'overview', overview: this.latest });
          } else if (event.event === 'signed-out') {
            signedOut = true;
            return false;
          }
          return true;
        },
      });
    } catch (err) {
      if (err.signedOut) signedOut = true;
    }
    if (controller !== this.controller || !this.running) return;
    if (signedOut) {
      this.stop();
      this.onSignedOut();
      return;
    }
    this.setState('reconnecting');
    this.retryTimer = setTimeout(() => {
      if (this.running && controller === this.controller) this.connect();
    }, RETRY_MS);
  }
}
