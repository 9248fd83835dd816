// The npm FHIR client fhir-kit-client against the real server: CRUD,
// history, transaction, conditional create, patch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'fhir-kit-client';
import { startServer } from './server.mjs';

let server;
let client;

before(async () => {
  server = await startServer();
  client = new Client({ baseUrl: server.baseUrl });
});

after(async () => {
  const { code } = await server.stop();
  assert.equal(code, 0, 'graceful shutdown exits 0');
});

test('capability statement', async () => {
  const cs = await client.capabilityStatement();
  assert.equal(cs.resourceType, 'CapabilityStatement');
  assert.equal(cs.fhirVersion, '4.0.1');
});

test('create, read, update, vread, delete', async () => {
  const created = await client.create({
    resourceType: 'Patient',
    body: { resourceType: 'Patient', name: [{ family: 'Jones', given: ['Ann'] }], birthDate: '1950-03-04' },
  });
  assert.ok(created.id);
  assert.equal(created.meta.versionId, '1');
  const read = await client.read({ resourceType: 'Patient', id: created.id });
  assert.deepEqual(read, created);
  const updated = await client.update({
    resourceType: 'Patient',
    id: created.id,
    body: { ...read, gender: 'female' },
  });
  assert.equal(updated.meta.versionId, '2');
  assert.equal(updated.gender, 'female');
  const v1 = await client.vread({ resourceType: 'Patient', id: created.id, version: '1' });
  assert.equal(v1.gender, undefined);
  await client.delete({ resourceType: 'Patient', id: created.id });
  await assert.rejects(client.read({ resourceType: 'Patient', id: created.id }), (e) => e.response.status === 410);
});

test('history', async () => {
  const p = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', active: true } });
  await client.update({ resourceType: 'Patient', id: p.id, body: { ...p, active: false } });
  const h = await client.history({ resourceType: 'Patient', id: p.id });
  assert.equal(h.type, 'history');
  assert.equal(h.entry.length, 2);
  assert.equal(h.entry[0].resource.meta.versionId, '2');
  const typeHistory = await client.typeHistory({ resourceType: 'Patient' });
  assert.ok(typeHistory.entry.length >= 2);
});

test('transaction with urn:uuid references', async () => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a',
        resource: { resourceType: 'Patient', name: [{ family: 'Tx' }] },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        resource: {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
          subject: { reference: 'urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a' },
          valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
        },
        request: { method: 'POST', url: 'Observation' },
      },
    ],
  };
  const r = await client.transaction({ body: bundle });
  assert.equal(r.type, 'transaction-response');
  assert.equal(r.entry[0].response.status, '201 Created');
  const pid = r.entry[0].resource.id;
  assert.equal(r.entry[1].resource.subject.reference, `Patient/${pid}`);
  const obs = await client.read({ resourceType: 'Observation', id: r.entry[1].resource.id });
  assert.equal(obs.valueQuantity.value, 72);
});

test('conditional create', async () => {
  const body = {
    resourceType: 'Patient',
    identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9000000009' }],
  };
  const options = { headers: { 'If-None-Exist': 'identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009' } };
  const a = await client.create({ resourceType: 'Patient', body, options });
  const b = await client.create({ resourceType: 'Patient', body, options });
  assert.equal(a.id, b.id);
});

test('JSON patch', async () => {
  const p = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', active: true } });
  const patched = await client.patch({
    resourceType: 'Patient',
    id: p.id,
    jsonPatch: [{ op: 'replace', path: '/active', value: false }],
  });
  assert.equal(patched.active, false);
  assert.equal(patched.meta.versionId, '2');
});

test('invalid resources get an OperationOutcome and are not stored', async () => {
  await assert.rejects(
    client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', birthDate: '1970-02-30' } }),
    (e) => e.response.status === 422 && e.response.data.resourceType === 'OperationOutcome',
  );
});
