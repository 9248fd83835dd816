// Bulk Data $export end to end: `bevan synth` makes a small trust, `bevan
// import` loads it, `bevan serve` runs on it, and a client does the whole
// asynchronous export (kick-off, polling, manifest, downloads, delete) and
// checks the counts against what was imported; `bevan export` gives the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bevan, startServer } from './server.mjs';

function lines(text) {
  return text.split('\n').filter((l) => l.length > 0);
}

// type -> number of resources in the trust's NDJSON files.
function trustCounts(dir) {
  const counts = {};
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.ndjson'))) {
    for (const l of lines(fs.readFileSync(path.join(dir, f), 'utf8'))) {
      const t = JSON.parse(l).resourceType;
      counts[t] = (counts[t] ?? 0) + 1;
    }
  }
  return counts;
}

test('a full asynchronous system export returns everything that was imported', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bevan-e2e-export-'));
  const trust = path.join(work, 'trust');
  const db = path.join(work, 'bevan.db');
  execFileSync(bevan, ['synth', '--patients', '20', '--out', trust], { stdio: 'ignore' });
  execFileSync(bevan, ['import', '--db', `sqlite:${db}`, trust], { stdio: 'ignore' });
  const expected = trustCounts(trust);
  const server = await startServer({ dbPath: db, extraArgs: ['--export-dir', path.join(work, 'exports')] });
  try {
    const base = server.baseUrl;
    const noAsync = await fetch(`${base}/$export`);
    assert.equal(noAsync.status, 400);
    assert.equal((await noAsync.json()).resourceType, 'OperationOutcome');

    const kick = await fetch(`${base}/$export`, {
      headers: { Prefer: 'respond-async', Accept: 'application/fhir+json' },
    });
    assert.equal(kick.status, 202);
    const statusUrl = kick.headers.get('content-location');
    assert.match(statusUrl, /\$export-poll-status\?_jobId=/);

    let manifest;
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      const r = await fetch(statusUrl);
      if (r.status === 200) {
        manifest = await r.json();
        break;
      }
      assert.equal(r.status, 202);
      assert.ok(r.headers.get('x-progress'));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(manifest, 'the export finished within 60 s');
    assert.equal(manifest.request, `${base}/$export`);
    assert.equal(manifest.requiresAccessToken, false);
    assert.ok(!Number.isNaN(Date.parse(manifest.transactionTime)));
    assert.deepEqual(manifest.error, []);

    const got = {};
    for (const o of manifest.output) {
      const r = await fetch(o.url);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /application\/fhir\+ndjson/);
      const ls = lines(await r.text());
      assert.equal(ls.length, o.count, o.url);
      for (const l of ls) assert.equal(JSON.parse(l).resourceType, o.type);
      got[o.type] = (got[o.type] ?? 0) + o.count;
    }
    assert.deepEqual(got, expected);

    // Patient level with a type filter: vital signs only.
    const kick2 = await fetch(
      `${base}/Patient/$export?_type=Observation&_typeFilter=${encodeURIComponent('Observation?category=vital-signs')}`,
      { headers: { Prefer: 'respond-async' } });
    assert.equal(kick2.status, 202);
    const status2 = kick2.headers.get('content-location');
    let m2;
    while (Date.now() < deadline && !m2) {
      const r = await fetch(status2);
      if (r.status === 200) m2 = await r.json();
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(m2);
    for (const o of m2.output) {
      assert.equal(o.type, 'Observation');
      for (const l of lines(await (await fetch(o.url)).text())) {
        const obs = JSON.parse(l);
        assert.ok(obs.category.some((c) => c.coding.some((x) => x.code === 'vital-signs')));
      }
    }

    // DELETE removes the job and its files.
    assert.equal((await fetch(statusUrl, { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(statusUrl)).status, 404);
    assert.equal((await fetch(manifest.output[0].url)).status, 404);
  } finally {
    await server.stop();
  }

  // The CLI writes the same counts, one Type.ndjson per type.
  const out = path.join(work, 'cli-export');
  execFileSync(bevan, ['export', '--db', `sqlite:${db}`, '--out', out], { stdio: 'ignore' });
  const cli = {};
  for (const f of fs.readdirSync(out)) cli[f.replace('.ndjson', '')] = lines(fs.readFileSync(path.join(out, f), 'utf8')).length;
  assert.deepEqual(cli, expected);
  fs.rmSync(work, { recursive: true, force: true });
});
