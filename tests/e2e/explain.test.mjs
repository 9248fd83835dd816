// `bevan explain` against a real store: a small `bevan synth` trust imported
// into SQLite, a patient-scoped search explained, and its printed statements
// replayed in the sqlite3 shell (when installed) with the printed
// `.parameter set` lines, which must bind strings as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bevan } from './server.mjs';

test('bevan explain prints the statements, their values and plans, and times the search', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bevan-e2e-explain-'));
  const trust = path.join(work, 'trust');
  const db = path.join(work, 'bevan.db');
  execFileSync(bevan, ['synth', '--patients', '20', '--out', trust], { stdio: 'ignore' });
  execFileSync(bevan, ['import', '--db', `sqlite:${db}`, trust], { stdio: 'ignore' });
  const first = fs.readFileSync(path.join(trust, 'Observation.ndjson'), 'utf8').split('\n')[0];
  const obs = JSON.parse(first);
  const patient = obs.subject.reference;
  const coding = obs.code.coding[0];
  const search = `Observation?patient=${patient}&code=${coding.system}|${coding.code}&_total=accurate`;

  const out = execFileSync(bevan, ['explain', '--db', `sqlite:${db}`, search, '--repeat', '3'], { encoding: 'utf8' });
  assert.match(out, /^plan: and\(/);
  assert.match(out, new RegExp(`\\.parameter set \\?\\d+ "'${coding.code.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'"`));
  assert.match(out, /SELECT count\(\*\) FROM /);
  assert.match(out, /^SEARCH /m); // the store's query plans
  const timing = /^(\d+) matches, 0 included; 3 runs: min [\d.]+ ms, p50 [\d.]+ ms, max [\d.]+ ms$/m.exec(out);
  assert.ok(timing, out);
  const matches = Number(timing[1]);
  assert.ok(matches >= 1);

  // The count statement replayed in the sqlite3 shell gives the same number.
  const blocks = out.split('\n\n').filter((b) => b.includes('SELECT count(*)') && !b.startsWith('--'));
  assert.equal(blocks.length, 1);
  const shell = spawnSync('sqlite3', ['-readonly', db], { input: blocks[0] + '\n', encoding: 'utf8' });
  if (shell.error?.code !== 'ENOENT') {
    assert.equal(shell.status, 0, shell.stderr);
    assert.equal(Number(shell.stdout.trim()), matches);
  }

  const bad = spawnSync(bevan, ['explain', '--db', `sqlite:${db}`, 'Observation?date=notadate'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /date/);
  fs.rmSync(work, { recursive: true, force: true });
});
