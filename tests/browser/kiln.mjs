// Helpers for the browser test: start a real kiln server, start Debian's Chromium, and write rows
// straight into kiln's SQLite file (with Python's sqlite3, present on every machine kiln builds on).

import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kilnBinary = process.env.KILN_BIN || join(root, 'target', 'debug', 'kiln');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

/** Starts `kiln server` on a free port with a fresh data dir; resolves once it listens. */
export function startKiln() {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-browser-'));
  const child = spawn(kilnBinary, ['server', '--address', '127.0.0.1:0', '--data-dir', dataDir, '--workers', '0'], {
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
      log += chunk;
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m && timer) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolvePromise({
          url: m[1],
          dataDir,
          db: join(dataDir, 'kiln.db'),
          log: () => log,
          stop: () => new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 8000).unref();
          }),
        });
      }
    });
  });
}

/** Debian's Chromium, headless, with a fresh profile and no background networking. */
export async function startBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'kiln-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

// --- Rows --------------------------------------------------------------------------------------

const RUN_SQL = `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
db.execute("PRAGMA foreign_keys = ON")
db.executescript(sys.stdin.read())
`;
const QUERY_SQL = `
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
print(json.dumps(db.execute(sys.argv[2]).fetchall()))
`;

/** A value spliced into SQL as is (e.g. a sub-select). */
export const raw = (sql) => ({ raw: sql });

function literal(value) {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'object' && 'raw' in value) return value.raw;
  if (typeof value === 'number') return String(Math.trunc(value));
  if (typeof value === 'boolean') return value ? '1' : '0';
  return `'${String(value).replaceAll("'", "''")}'`;
}

export function insert(table, row) {
  const columns = Object.keys(row);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => literal(row[c])).join(', ')});`;
}

export function update(table, set, where) {
  const assignments = Object.entries(set).map(([c, v]) => `${c} = ${literal(v)}`).join(', ');
  const conditions = Object.entries(where).map(([c, v]) => `${c} = ${literal(v)}`).join(' AND ');
  return `UPDATE ${table} SET ${assignments} WHERE ${conditions};`;
}

/** Runs `statements` in one transaction, as kiln itself writes a build and its job together. */
export function runSql(db, statements) {
  execFileSync('python3', ['-c', RUN_SQL, db], { input: ['BEGIN IMMEDIATE;', ...statements, 'COMMIT;'].join('\n') });
}

export function query(db, sql) {
  return JSON.parse(execFileSync('python3', ['-c', QUERY_SQL, db, sql], { encoding: 'utf8' }));
}

/** Microseconds since the epoch, as kiln stores times. */
export const micros = (date = Date.now()) => Math.trunc(date * 1000);
export const iso = (us) => (us === null || us === undefined ? undefined : new Date(us / 1000).toISOString());

/**
 * Writes rows consistent with kiln's schema: `build(...)` adds a workspace build with its job.
 * Returns what it wrote, so the test can also answer for endpoints the server lacks.
 */
export class Rows {
  constructor(db) {
    this.db = db;
    [[this.orgId]] = query(db, 'SELECT id FROM organizations WHERE is_default = 1');
    this.fileId = null;
  }

  userId(username) {
    return query(this.db, `SELECT id FROM users WHERE username = ${literal(username)}`)[0][0];
  }

  job(sql, { type, input, initiator, startedAt = null, completedAt = null, canceledAt = null, error = '' }) {
    const id = randomUUID();
    const now = micros();
    if (!this.fileId) {
      this.fileId = randomUUID();
      sql.push(insert('files', {
        id: this.fileId, hash: randomUUID(), mimetype: 'application/x-tar', data: raw("x'00'"), created_by: initiator, created_at: now,
      }));
    }
    sql.push(insert('provisioner_jobs', {
      id, seq: raw('(SELECT coalesce(max(seq), 0) + 1 FROM provisioner_jobs)'), created_at: now, updated_at: now,
      started_at: startedAt, completed_at: completedAt, canceled_at: canceledAt, error,
      organization_id: this.orgId, initiator_id: initiator, file_id: this.fileId, type, input: JSON.stringify(input),
    }));
    return id;
  }

  template(name, createdBy) {
    const sql = [];
    const id = randomUUID();
    const versionId = randomUUID();
    const now = micros();
    const jobId = this.job(sql, {
      type: 'template_version_import', input: { template_version_id: versionId }, initiator: createdBy,
      startedAt: now - 5e6, completedAt: now - 4e6,
    });
    sql.push(insert('template_versions', {
      id: versionId, template_id: null, organization_id: this.orgId, name: `${name}-v1`, job_id: jobId,
      file_id: this.fileId, created_by: createdBy, created_at: now, updated_at: now,
    }));
    sql.push(insert('templates', {
      id, organization_id: this.orgId, name, active_version_id: versionId, created_by: createdBy, created_at: now, updated_at: now,
    }));
    sql.push(update('template_versions', { template_id: id }, { id: versionId }));
    runSql(this.db, sql);
    return { id, versionId, versionName: `${name}-v1` };
  }

  workspace(name, ownerId, template) {
    const id = randomUUID();
    const now = micros();
    runSql(this.db, [insert('workspaces', {
      id, organization_id: this.orgId, owner_id: ownerId, template_id: template.id, name,
      created_at: now, updated_at: now, last_used_at: now,
    })]);
    return { id, name, ownerId, template };
  }

  /** A build of `workspace` with its job, parameters, resources and logs. */
  build(workspace, { number, transition, initiator, job = {}, parameters = [], resources = [], logs = [], createdAt = micros() }) {
    const sql = [];
    const id = randomUUID();
    const now = createdAt;
    const jobFacts = { startedAt: null, completedAt: null, canceledAt: null, error: '', ...job };
    const jobId = this.job(sql, {
      type: 'workspace_build', input: { workspace_build_id: id }, initiator, ...jobFacts,
    });
    sql.push(insert('workspace_builds', {
      id, workspace_id: workspace.id, template_version_id: workspace.template.versionId, build_number: number,
      transition, initiator_id: initiator, job_id: jobId, created_at: now, updated_at: now,
    }));
    parameters.forEach((p, position) => sql.push(insert('workspace_build_parameters', {
      build_id: id, position, name: p.name, value: p.value,
    })));
    for (const r of resources) {
      sql.push(insert('workspace_resources', {
        id: r.id, job_id: jobId, created_at: now, workspace_transition: transition, type: r.type, name: r.name,
        metadata: JSON.stringify(r.metadata), agents: JSON.stringify(r.agents),
      }));
    }
    for (const l of logs) {
      sql.push(insert('provisioner_job_logs', {
        job_id: jobId, created_at: now, source: l.log_source, level: l.log_level, stage: l.stage, output: l.output,
      }));
    }
    runSql(this.db, sql);
    return { id, jobId, number, transition, workspace, initiator, createdAt: now, ...jobFacts, parameters, resources, logs };
  }

  startJob(jobId, at = micros()) {
    runSql(this.db, [update('provisioner_jobs', { started_at: at, updated_at: at }, { id: jobId })]);
  }
}
