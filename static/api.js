// Talking to kiln: JSON requests with the session cookie, and Server-Sent Events read over
// fetch (so an answer's status is known, and a stream can resume where it stopped).

/** An API answer that was not 2xx: Coder's error body, with the HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.detail = body?.detail || '';
    this.validations = Array.isArray(body?.validations) ? body.validations : [];
  }

  get notFound() {
    return this.status === 404;
  }

  get signedOut() {
    return this.status === 401;
  }
}

async function errorFrom(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = { message: `${res.status} ${res.statusText}` };
  }
  return new ApiError(res.status, body);
}

/** Calls `path` under /api/v2; resolves to the parsed JSON body (or null when empty). */
export async function api(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/v2${path}`, init);
  } catch (e) {
    throw new ApiError(0, { message: 'kiln cannot be reached.', detail: String(e.message || e) });
  }
  if (!res.ok) throw await errorFrom(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});
export const patch = (path, body) => api('PATCH', path, body ?? {});

/**
 * Reads Server-Sent Events from `path` under /api/v2 until the stream ends, `signal` aborts,
 * or `onEvent` returns false. `onEvent({event, data, id})` is called once per event.
 * Rejects with an ApiError when the answer is not 2xx; resolves when the stream ends.
 */
export async function readEvents(path, { signal, onEvent, onOpen }) {
  let res;
  try {
    res = await fetch(`/api/v2${path}`, {
      credentials: 'same-origin',
      headers: { Accept: 'text/event-stream' },
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    if (signal?.aborted) return;
    throw new ApiError(0, { message: 'kiln cannot be reached.', detail: String(e.message || e) });
  }
  if (!res.ok) throw await errorFrom(res);
  if (!(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
    res.body?.cancel().catch(() => {});
    throw new ApiError(406, { message: 'kiln did not answer with an event stream.' });
  }
  onOpen?.();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  let event = { event: 'message', data: [], id: null };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += value;
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).replace(/\r$/, '');
        pending = pending.slice(newline + 1);
        if (line === '') {
          // A named event counts even without data (`event: end` may come bare).
          if (event.data.length > 0 || event.event !== 'message') {
            const keepGoing = onEvent({ event: event.event, data: event.data.join('\n'), id: event.id });
            if (keepGoing === false) {
              reader.cancel().catch(() => {});
              return;
            }
          }
          event = { event: 'message', data: [], id: null };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value_ = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event.event = value_;
        else if (field === 'data') event.data.push(value_);
        else if (field === 'id') event.id = value_;
      }
    }
  } catch (e) {
    if (signal?.aborted) return;
    throw new ApiError(0, { message: 'The connection to kiln was lost.', detail: String(e.message || e) });
  }
}
