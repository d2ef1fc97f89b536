// Helpers for the browser test: start a real kiln server and Debian's Chromium, talk to kiln's
// API with node's fetch, and pack template archives (plain ustar) in memory.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kilnBinary = process.env.KILN_BIN || join(root, 'target', 'debug', 'kiln');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Starts `kiln server` on a free port with a fresh data dir and its default 3 workers; resolves
 * once it listens. A short shutdown grace lets `stop()` end builds still running quickly;
 * `stop()` also removes the data dir.
 */
export function startKiln() {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-browser-'));
  const child = spawn(kilnBinary, ['server', '--address', '127.0.0.1:0', '--data-dir', dataDir, '--shutdown-grace', '1'], {
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kiln did not start within 20 s:\n${log}`));
    }, 20000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${kilnBinary}: ${e.message} (run cargo build first)`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kiln exited (${code}) before listening:\n${log}`));
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      const firstTime = !/listening on http/.test(log);
      log += chunk;
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m && firstTime) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolvePromise({
          url: m[1],
          dataDir,
          log: () => log,
          stop: () => new Promise((done) => {
            const removed = () => {
              rmSync(dataDir, { recursive: true, force: true });
              done();
            };
            if (child.exitCode !== null || child.signalCode !== null) return removed();
            child.once('exit', removed);
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 8000).unref();
          }),
        });
      }
    });
  });
}

/**
 * Debian's Chromium, headless, with a fresh profile (removed when it closes) and no background
 * networking.
 */
export async function startBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'kiln-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  // Chromium's helper processes may still write into the profile as the browser closes:
  // retry, and never let a leftover temp folder fail the run.
  browser.on('close', () => {
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (e) {
      console.log(`note: could not remove ${profile}: ${e.message}`);
    }
  });
  return browser;
}

// --- The API ------------------------------------------------------------------------------------

/** kiln's API as one signed-in user, with the session token in Coder-Session-Token. */
export class Api {
  static async login(base, email, password) {
    const answer = await new Api(base, null).call('POST', '/users/login', { email, password });
    return new Api(base, answer.session_token);
  }

  constructor(base, token) {
    this.base = base;
    this.token = token;
  }

  /** Calls `path` under /api/v2; resolves to the JSON answer, rejects on a non-2xx status. */
  async call(method, path, body, { contentType = 'application/json' } = {}) {
    // No idle keep-alive connection is left behind: kiln's graceful stop would wait for it.
    const headers = { Accept: 'application/json', Connection: 'close' };
    if (this.token) headers['Coder-Session-Token'] = this.token;
    if (body !== undefined) headers['Content-Type'] = contentType;
    const payload = body === undefined || body instanceof Uint8Array ? body : JSON.stringify(body);
    const res = await fetch(`${this.base}/api/v2${path}`, { method, headers, body: payload });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  get(path) { return this.call('GET', path); }
  post(path, body = {}) { return this.call('POST', path, body); }
  patch(path, body = {}) { return this.call('PATCH', path, body); }

  /** GETs `path` until `done(answer)`; resolves to that answer. */
  async until(path, done, { timeoutMs = 15000 } = {}) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const answer = await this.get(path);
      if (done(answer)) return answer;
      if (Date.now() > end) throw new Error(`${path} did not get there in ${timeoutMs} ms: ${JSON.stringify(answer)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Uploads `manifest` (a kiln.json value) as a template archive, imports it and makes a
   * template named `name` of it; resolves to the Template.
   */
  async template(name, manifest, extraFiles = {}) {
    const archive = tarOf({ 'kiln.json': JSON.stringify(manifest, null, 2), ...extraFiles });
    const { hash } = await this.call('POST', '/files', archive, { contentType: 'application/x-tar' });
    const version = await this.post('/organizations/coder/templateversions', {
      storage_method: 'file', file_id: hash, provisioner: 'echo',
    });
    const imported = await this.until(`/templateversions/${version.id}`,
      (v) => ['succeeded', 'failed', 'canceled'].includes(v.job.status));
    if (imported.job.status !== 'succeeded') throw new Error(`template ${name} did not import: ${imported.job.error}`);
    return this.post('/organizations/coder/templates', { name, template_version_id: version.id });
  }

  /** Creates a workspace for the caller; resolves to the Workspace (its first build queued). */
  workspace(name, template, parameters = []) {
    return this.post('/users/me/workspaces', { name, template_id: template.id, rich_parameter_values: parameters });
  }

  /** Queues a build (`start`, `stop` or `delete`) of `workspace`; resolves to the WorkspaceBuild. */
  build(workspace, transition) {
    return this.post(`/workspaces/${workspace.id}/builds`, { transition });
  }
}

// --- Template archives --------------------------------------------------------------------------

const encoder = new TextEncoder();

/** Writes `text` into `header` at `offset`, in at most `length` bytes. */
function put(header, offset, length, text) {
  const bytes = encoder.encode(text);
  if (bytes.length > length) throw new Error(`tar header field too long: ${text}`);
  header.set(bytes, offset);
}

const octal = (n, width) => n.toString(8).padStart(width - 1, '0');

/** A plain ustar archive of `files` ({path: text}), each a regular file at the archive's root. */
export function tarOf(files) {
  const blocks = [];
  for (const [path, text] of Object.entries(files)) {
    const data = encoder.encode(text);
    const header = new Uint8Array(512);
    put(header, 0, 100, path);
    put(header, 100, 8, octal(0o644, 8));
    put(header, 108, 8, octal(0, 8));
    put(header, 116, 8, octal(0, 8));
    put(header, 124, 12, octal(data.length, 12));
    put(header, 136, 12, octal(Math.floor(Date.now() / 1000), 12));
    put(header, 148, 8, '        ');
    put(header, 156, 1, '0');
    put(header, 257, 8, 'ustar\u000000');
    const sum = header.reduce((a, b) => a + b, 0);
    put(header, 148, 8, `${octal(sum, 7)}\u0000 `);
    blocks.push(header, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const archive = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    archive.set(b, at);
    at += b.length;
  }
  return archive;
}
