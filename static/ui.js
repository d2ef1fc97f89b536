// Small DOM and formatting helpers shared by the views. Text is always set as text, never as
// HTML, so nothing the server sends can become markup.

/** `h('a', {href: '#/'}, 'text', child)`: an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const STATUS_TONE = {
  pending: 'waiting',
  starting: 'busy',
  stopping: 'busy',
  deleting: 'busy',
  canceling: 'busy',
  running: 'good',
  succeeded: 'good',
  stopped: 'quiet',
  deleted: 'quiet',
  canceled: 'warn',
  failed: 'bad',
};

/** A coloured badge for a build or job status word (the word itself is always shown). */
export function badge(status) {
  const word = status || 'unknown';
  return h('span', { class: `badge tone-${STATUS_TONE[word] || 'quiet'}` }, word);
}

/** Build statuses while the build's job still holds its workspace. */
export const ACTIVE_BUILD_STATUSES = ['pending', 'starting', 'stopping', 'deleting', 'canceling'];

/** The build status words, in the order the filter offers them. */
export const BUILD_STATUSES = [
  'pending', 'starting', 'running', 'stopping', 'stopped',
  'failed', 'canceling', 'canceled', 'deleting', 'deleted',
];

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function absoluteTime(iso) {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? '' : dateTime.format(t);
}

/** "12 s ago", "5 min ago", "3 h ago", else the date. */
export function relativeTime(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return absoluteTime(iso);
}

/** A `<time>` showing a relative time that the ticker keeps current; the exact time on hover. */
export function timeAgo(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: absoluteTime(iso), dataset: { ago: iso } }, relativeTime(iso));
}

/** "850 ms", "42 s", "3 min 05 s", "2 h 10 min". */
export function duration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.floor(s / 60);
  if (m < 1440) return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(m / 1440)} d ${Math.floor((m % 1440) / 60)} h`;
}

/** A duration that the ticker keeps growing from `sinceIso` until it is replaced. */
export function liveDuration(sinceIso) {
  return h('span', { class: 'live-duration', dataset: { since: sinceIso } },
    duration(Date.now() - new Date(sinceIso).getTime()));
}

/** Once a second, brings every relative time and live duration on the page up to date. */
export function startTicker() {
  setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-ago]')) el.textContent = relativeTime(el.dataset.ago, now);
    for (const el of document.querySelectorAll('[data-since]')) {
      el.textContent = duration(now - new Date(el.dataset.since).getTime());
    }
  }, 1000);
}

/** An error box for an ApiError (message, detail and field validations). */
export function errorBox(err, lead) {
  return h('div', { class: 'notice notice-error', role: 'alert' },
    h('p', {}, h('strong', {}, lead ? `${lead} ` : ''), err.message || String(err)),
    err.detail ? h('p', { class: 'detail' }, err.detail) : null,
    err.validations?.length
      ? h('ul', {}, err.validations.map((v) => h('li', {}, h('code', {}, v.field), ': ', v.detail)))
      : null);
}

/** A plain notice. */
export function notice(text, kind = 'info') {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** Says `text` to screen readers through the page's live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 50);
}

/** A table with a header row; each row is an array of [label, content] pairs. */
export function table(caption, headers, rows, { className = '' } = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: `data ${className}` },
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', {}, h('tr', {}, headers.map((label) => h('th', { scope: 'col' }, label)))),
      h('tbody', {}, rows.map((row) => h('tr', row.attrs || {},
        row.cells.map((cell, i) => h('td', { 'data-label': headers[i] }, cell)))))));
}
