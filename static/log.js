// A build's log: follows `GET /api/v2/workspacebuilds/{id}/logs?follow=true` as Server-Sent
// Events (resuming after the last log id when the connection drops) and keeps the view scrolled
// to the newest line unless the reader has scrolled up.

import { readEvents } from './api.js';
import { fill, h } from './ui.js';

const RETRY_MS = 2000;
const time = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3, hour12: false,
});

function formatTime(iso) {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? '' : time.format(t);
}

export class BuildLog {
  /**
   * `box`: the scrolling element for lines; `status`: where the log's state is said;
   * `onEnd`: called once the server says the log is complete.
   */
  constructor(buildId, { box, status, onEnd, onSignedOut }) {
    this.buildId = buildId;
    this.box = box;
    this.status = status;
    this.onEnd = onEnd;
    this.onSignedOut = onSignedOut;
    this.lastId = 0;
    this.lastStage = null;
    this.pending = [];
    this.flushScheduled = false;
    this.done = false;
    this.controller = new AbortController();
    this.retryTimer = null;
  }

  stop() {
    this.controller.abort();
    clearTimeout(this.retryTimer);
  }

  setStatus(text, state) {
    this.status.textContent = text;
    this.status.dataset.state = state;
  }

  add(log) {
    if (typeof log.id !== 'number' || log.id <= this.lastId) return;
    this.lastId = log.id;
    this.pending.push(log);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.flushScheduled = false;
    if (!this.pending.length) return;
    const box = this.box;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 32;
    box.querySelector('.log-empty')?.remove();
    const lines = document.createDocumentFragment();
    for (const log of this.pending) {
      if (log.stage && log.stage !== this.lastStage) {
        this.lastStage = log.stage;
        lines.append(h('div', { class: 'log-stage' },
          h('span', {}, log.stage),
          h('time', { datetime: log.created_at }, formatTime(log.created_at))));
      }
      // A stage's own marker line says nothing the stage heading does not.
      if (log.log_source === 'provisioner_daemon' && !log.output) continue;
      lines.append(h('div', { class: `log-line level-${log.log_level}`, dataset: { logId: String(log.id) } },
        h('time', { datetime: log.created_at }, formatTime(log.created_at)),
        h('span', { class: 'log-level' }, log.log_level),
        h('span', { class: 'log-output' }, log.output)));
    }
    this.pending = [];
    box.append(lines);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  /** Follows the log until it ends or `stop()` is called. */
  async follow() {
    const signal = this.controller.signal;
    let attempts = 0;
    while (!signal.aborted && !this.done) {
      attempts += 1;
      this.setStatus(attempts === 1 ? 'Connecting to the log…' : 'Reconnecting to the log…', 'connecting');
      try {
        await readEvents(`/workspacebuilds/${encodeURIComponent(this.buildId)}/logs?follow=true&after=${this.lastId}`, {
          signal,
          onOpen: () => this.setStatus('Following the log live…', 'live'),
          onEvent: (event) => {
            if (event.event === 'log') this.add(JSON.parse(event.data));
            else if (event.event === 'end') {
              this.done = true;
              return false;
            }
            return true;
          },
        });
      } catch (err) {
        if (signal.aborted) return;
        if (err.signedOut) {
          this.onSignedOut();
          return;
        }
        // kiln refused (not a lost connection): say why; trying again would not help.
        if (err.status) {
          this.setStatus(`Could not follow the log: ${err.message}`, 'failed');
          return;
        }
      }
      if (!this.done && !signal.aborted) {
        await new Promise((resolve) => { this.retryTimer = setTimeout(resolve, RETRY_MS); });
      }
    }
    if (this.done) {
      this.flush();
      if (!this.box.querySelector('.log-line, .log-stage')) fill(this.box, h('p', { class: 'log-empty muted' }, 'This build wrote no log lines.'));
      this.setStatus('The log is complete.', 'done');
      this.onEnd?.();
    }
  }
}

/** The empty log box, before any line has come. */
export function emptyLogBox() {
  return h('div', {
    class: 'log', id: 'build-log', tabindex: '0', role: 'log', 'aria-live': 'off', 'aria-label': 'Build log',
  }, h('p', { class: 'log-empty muted' }, 'No log lines yet.'));
}
