// SMART App Launch v2 against the real server: `bevan serve` with an auth
// config, and the npm SMART client `fhirclient` (its Node adapter, with a
// minimal fake request, response and session) doing a standalone patient
// launch: authorize -> our sign-in form (driven with fetch, as a browser
// would) -> redirect with code -> token (PKCE S256) -> read the patient's own
// Patient resource with the access token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { bevan, startServer, tempDb } from './server.mjs';

const require = createRequire(import.meta.url);
const smart = require('fhirclient/lib/entry/node');

const REDIRECT = 'http://127.0.0.1:9000/callback';
const PATIENT_ID = 'smart-e2e-pat-1';
let server;
let dir;

function hash(password) {
  return execFileSync(bevan, ['auth', 'hash-password'], { input: password + '\n' }).toString().trim();
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bevan-smart-'));
  const dbPath = tempDb();
  // Two patients, loaded before the server starts (with auth on, writes need a token).
  const ndjson = path.join(dir, 'Patient.ndjson');
  fs.writeFileSync(ndjson, [
    { resourceType: 'Patient', id: PATIENT_ID, name: [{ family: 'Smart', given: ['Sam'] }], birthDate: '1980-01-02' },
    { resourceType: 'Patient', id: 'someone-else', name: [{ family: 'Other' }] },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n');
  execFileSync(bevan, ['import', '--db', `sqlite:${dbPath}`, ndjson], { stdio: 'ignore' });

  fs.writeFileSync(path.join(dir, 'users.json'), JSON.stringify({
    users: [
      { username: 'sam', password_hash: hash('test-only-pw-sam'), role: 'patient', fhirUser: `Patient/${PATIENT_ID}`, identity_level: 'P9' },
      { username: 'pat', password_hash: hash('test-only-pw-pat'), role: 'patient', fhirUser: 'Patient/someone-else', identity_level: 'P5' },
    ],
  }));
  fs.writeFileSync(path.join(dir, 'clients.json'), JSON.stringify({
    clients: [{
      client_id: 'e2e-app', type: 'public', redirect_uris: [REDIRECT],
      scopes: ['openid', 'fhirUser', 'launch/patient', 'offline_access', 'patient/*.rs', 'patient/Patient.r'],
    }],
  }));
  const config = path.join(dir, 'bevan.json');
  fs.writeFileSync(config, JSON.stringify({ auth: { users_file: 'users.json', clients_file: 'clients.json' } }));
  server = await startServer({ dbPath, extraArgs: ['--config', config] });
});

after(async () => {
  if (server) assert.equal((await server.stop()).code, 0);
});

// The Node adapter's view of one incoming request to the app.
function fakeExchange(url, session) {
  const res = { status: 0, headers: {} };
  const request = { url, headers: { host: '127.0.0.1:9000' }, socket: { encrypted: false }, session };
  const response = {
    writeHead(status, headers) {
      res.status = status;
      Object.assign(res.headers, headers);
    },
    end() {},
  };
  return { request, response, res };
}

// Plays the browser at the sign-in form: returns the final redirect to the app.
async function signIn(authorizeUrl, username, password) {
  const form = await fetch(authorizeUrl, { redirect: 'manual' });
  assert.equal(form.status, 200, 'the sign-in form');
  const html = await form.text();
  const requestId = /name="request" value="([^"]+)"/.exec(html)[1];
  const action = /<form method="post" action="([^"]+)"/.exec(html)[1];
  const cookie = form.headers.get('set-cookie').split(';')[0];
  const login = await fetch(action, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie },
    body: new URLSearchParams({ request: requestId, username, password }).toString(),
  });
  return login;
}

async function authorize(session) {
  const launch = fakeExchange('/launch', session);
  await smart(launch.request, launch.response).authorize({
    iss: server.baseUrl,
    clientId: 'e2e-app',
    redirectUri: REDIRECT,
    scope: 'openid fhirUser launch/patient patient/*.rs offline_access',
    pkceMode: 'required',
  });
  assert.equal(launch.res.status, 302, 'fhirclient redirects to the authorization endpoint');
  const location = launch.res.headers.location;
  const params = new URL(location).searchParams;
  assert.equal(params.get('code_challenge_method'), 'S256');
  assert.equal(params.get('aud'), server.baseUrl);
  return location;
}

test('smart-configuration is public and advertises S256 only', async () => {
  const r = await fetch(`${server.baseUrl}/.well-known/smart-configuration`);
  assert.equal(r.status, 200);
  const conf = await r.json();
  assert.deepEqual(conf.code_challenge_methods_supported, ['S256']);
  assert.ok(conf.capabilities.includes('launch-standalone'));
  assert.equal((await fetch(`${server.baseUrl}/metadata`)).status, 200, 'the CapabilityStatement stays public');
});

test('without a token the FHIR API answers 401 with a Bearer challenge', async () => {
  const r = await fetch(`${server.baseUrl}/Patient/${PATIENT_ID}`);
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /^Bearer/);
  const bad = await fetch(`${server.baseUrl}/Patient/${PATIENT_ID}`, { headers: { Authorization: 'Bearer not-a-token' } });
  assert.equal(bad.status, 401);
  assert.match(bad.headers.get('www-authenticate'), /error="invalid_token"/);
});

test('standalone patient launch with fhirclient, then read the own Patient', async () => {
  const session = {};
  const authorizeUrl = await authorize(session);
  const login = await signIn(authorizeUrl, 'sam', 'test-only-pw-sam');
  assert.equal(login.status, 302, 'signed in');
  const back = new URL(login.headers.get('location'));
  assert.equal(back.origin + back.pathname, REDIRECT);
  assert.ok(back.searchParams.get('code'));

  const callback = fakeExchange(back.pathname + back.search, session);
  const client = await smart(callback.request, callback.response).ready();
  assert.equal(client.patient.id, PATIENT_ID);
  assert.equal(client.getFhirUser(), `Patient/${PATIENT_ID}`);
  assert.ok(client.state.tokenResponse.refresh_token, 'offline_access gives a refresh token');
  assert.equal(client.state.tokenResponse.token_type, 'Bearer');

  const patient = await client.patient.read();
  assert.equal(patient.resourceType, 'Patient');
  assert.equal(patient.id, PATIENT_ID);
  assert.equal(patient.name[0].family, 'Smart');

  // The token opens this patient's record only.
  const other = await fetch(`${server.baseUrl}/Patient/someone-else`, {
    headers: { Authorization: `Bearer ${client.state.tokenResponse.access_token}` },
  });
  assert.ok(other.status === 403 || other.status === 404, `another patient is refused (${other.status})`);

  // Refresh with rotation: the new tokens work; the old refresh token is
  // dead, and replaying it (a sign of theft) revokes the whole family.
  const firstRefresh = client.state.tokenResponse.refresh_token;
  await client.refresh();
  assert.notEqual(client.state.tokenResponse.refresh_token, firstRefresh);
  assert.equal((await client.patient.read()).id, PATIENT_ID, 'the refreshed access token works');
  const replay = await fetch(`${new URL(server.baseUrl).origin}/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'e2e-app', refresh_token: firstRefresh }).toString(),
  });
  assert.equal(replay.status, 400);
  assert.equal((await replay.json()).error, 'invalid_grant');
  const revoked = await fetch(`${server.baseUrl}/Patient/${PATIENT_ID}`, {
    headers: { Authorization: `Bearer ${client.state.tokenResponse.access_token}` },
  });
  assert.equal(revoked.status, 401, 'tokens of a replayed refresh token are revoked');
});

test('a user below identity level P9 is denied', async () => {
  const session = {};
  const authorizeUrl = await authorize(session);
  const login = await signIn(authorizeUrl, 'pat', 'test-only-pw-pat');
  assert.equal(login.status, 302);
  const back = new URL(login.headers.get('location'));
  assert.equal(back.searchParams.get('error'), 'access_denied');
  assert.equal(back.searchParams.get('code'), null);
});

test('a wrong password shows the form again', async () => {
  const authorizeUrl = await authorize({});
  const login = await signIn(authorizeUrl, 'sam', 'wrong');
  assert.equal(login.status, 401);
  assert.match(await login.text(), /Wrong username or password/);
});
