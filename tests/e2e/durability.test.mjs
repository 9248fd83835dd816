// Durability: a write answered 2xx survives kill -9 of the server. Creates
// run concurrently; the server is killed in the middle; after a restart on
// the same database every acknowledged resource is there, whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, tempDb } from './server.mjs';

test('acknowledged creates survive kill -9', async () => {
  const dbPath = tempDb();
  const server = await startServer({ dbPath });
  const acknowledged = [];
  let stop = false;
  const worker = async (w) => {
    // Bounded: at most 2,000 requests per worker.
    for (let i = 0; i < 2000 && !stop; i++) {
      const body = JSON.stringify({ resourceType: 'Patient', name: [{ family: `W${w}`, given: [`N${i}`] }] });
      try {
        const r = await fetch(`${server.baseUrl}/Patient`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/fhir+json' },
          body,
        });
        if (r.status === 201) {
          const p = await r.json();
          acknowledged.push({ id: p.id, family: `W${w}`, given: `N${i}` });
        }
      } catch {
        return; // the server is gone
      }
    }
  };
  const workers = Array.from({ length: 8 }, (_, w) => worker(w));
  // Kill once a good number of writes is in flight.
  while (acknowledged.length < 300) await new Promise((r) => setTimeout(r, 10));
  await server.kill();
  stop = true;
  await Promise.all(workers);
  assert.ok(acknowledged.length >= 300);

  const again = await startServer({ dbPath });
  try {
    for (const a of acknowledged) {
      const r = await fetch(`${again.baseUrl}/Patient/${a.id}`);
      assert.equal(r.status, 200, `acknowledged Patient/${a.id} is missing after kill -9`);
      const p = await r.json();
      assert.equal(p.name[0].family, a.family);
      assert.equal(p.name[0].given[0], a.given);
    }
  } finally {
    const { code } = await again.stop();
    assert.equal(code, 0);
  }
});
