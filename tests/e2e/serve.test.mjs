// `bevan serve` as an operator meets it: TLS, a config file, limits,
// loopback-only without authorisation, graceful shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { bevan, startServer, tempDb } from './server.mjs';

function selfSignedCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bevan-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('TLS with a certificate and key from the command line', async () => {
  const { cert, key } = selfSignedCert();
  const server = await startServer({ extraArgs: ['--tls-cert', cert, '--tls-key', key] });
  try {
    assert.match(server.baseUrl, /^https:/);
    const r = await httpsGet(`${server.baseUrl}/metadata`, fs.readFileSync(cert));
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).resourceType, 'CapabilityStatement');
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

test('settings from a config file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bevan-cfg-'));
  const config = path.join(dir, 'bevan.json');
  fs.writeFileSync(config, JSON.stringify({ max_body_bytes: 2048, max_bundle_entries: 2, pin_threads: false }));
  const server = await startServer({ extraArgs: ['--config', config] });
  try {
    const big = await fetch(`${server.baseUrl}/Patient`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', text: { status: 'generated', div: 'x'.repeat(5000) } }),
    });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).resourceType, 'OperationOutcome');
    const bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [1, 2, 3].map(() => ({ request: { method: 'GET', url: 'Patient/x' } })),
    };
    const r = await fetch(server.baseUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify(bundle),
    });
    assert.equal(r.status, 413);
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

test('a bad config file or a public address is refused with a message', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bevan-cfg-'));
  const config = path.join(dir, 'bad.json');
  fs.writeFileSync(config, JSON.stringify({ port: 'eighty' }));
  let r = spawnSync(bevan, ['serve', '--db', `sqlite:${tempDb()}`, '--config', config], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /'port' must be an integer/);
  fs.writeFileSync(config, JSON.stringify({ pin_threads: 'yes' }));
  r = spawnSync(bevan, ['serve', '--db', `sqlite:${tempDb()}`, '--config', config], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /'pin_threads' must be true or false/);
  r = spawnSync(bevan, ['serve', '--db', `sqlite:${tempDb()}`, '--address', '0.0.0.0', '--port', '0'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /loopback only/);
  r = spawnSync(bevan, ['serve', '--db', 'mysql://nope', '--port', '0'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /cannot open the store/);
});

test('--no-pin-threads serves as usual', async () => {
  const server = await startServer({ extraArgs: ['--no-pin-threads', '--threads', '2'] });
  try {
    const r = await fetch(`${server.baseUrl}/metadata`);
    assert.equal(r.status, 200);
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

test('unknown paths outside /fhir get a 404 OperationOutcome', async () => {
  const server = await startServer();
  try {
    const r = await fetch(server.baseUrl.replace('/fhir', '/nothing-here'));
    assert.equal(r.status, 404);
    assert.equal((await r.json()).resourceType, 'OperationOutcome');
    const gz = await fetch(`${server.baseUrl}/metadata`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(gz.headers.get('content-encoding'), 'gzip');
    assert.equal((await gz.json()).resourceType, 'CapabilityStatement');
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});
