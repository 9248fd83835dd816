// Data for bench/http/run: synthetic FHIR resources built from the Synthea
// sample, loaded through a server's transaction endpoint, and the request
// bodies of the wrk workloads. Deterministic (seeded), so every server gets
// the same bytes.
//
//   node data.mjs load   --base URL --synthea DIR --resources N --bundle 500 --concurrency 4 --out DIR
//       POSTs transaction Bundles of --bundle entries, at most --concurrency in
//       flight, until N resources are stored. One synthetic patient = one
//       Patient + 4 clinical resources (Encounter, Condition, Procedure,
//       MedicationRequest, cycling through the Synthea ones) that point at it
//       by urn:uuid inside the Bundle. Checks every entry's 201, writes
//       OUT/ids.txt ("Type/id" of every stored resource) and OUT/patients.txt
//       (the Patient ids), prints one JSON line with the load rate.
//   node data.mjs bodies --synthea DIR --out DIR
//       Writes create-patient.json, update-rest.txt (a Patient without its
//       leading '{"resourceType":"Patient","id":...' part: the Lua script puts
//       the id in front) and tx10.json (transaction: 1 Patient + 9 resources).
//   node data.mjs fetch  --base URL --ids FILE --count N --out ROOT
//       GETs N ids (evenly spread over FILE) and stores the response bytes as
//       ROOT/fhir/Type/id, plus ROOT/ids.txt: the static files nginx serves.
//
// Synthea's conditional references ("Practitioner?identifier=sys|value"),
// which a transaction would have to resolve against data that is not there,
// become literal references ("Practitioner/value"); other literal references
// (Encounter/...) are left as they are (no server here enforces referential
// integrity on write).

import fs from 'node:fs';
import path from 'node:path';

function args() {
  const out = { _: process.argv[2] };
  for (let i = 3; i < process.argv.length; i += 2) out[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  return out;
}

function die(msg) {
  console.error(`data.mjs: ${msg}`);
  process.exit(1);
}

// mulberry32: small seeded PRNG.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(rnd) {
  const h = [];
  for (let i = 0; i < 16; i++) h.push(Math.floor(rnd() * 256));
  h[6] = (h[6] & 0x0f) | 0x40;
  h[8] = (h[8] & 0x3f) | 0x80;
  const s = h.map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

function readNdjson(file) {
  if (!fs.existsSync(file)) die(`missing ${file}`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

function templates(dir) {
  const patients = readNdjson(path.join(dir, 'Patient.000.ndjson'));
  const byType = {};
  for (const t of ['Encounter', 'Condition', 'Procedure', 'MedicationRequest']) {
    byType[t] = readNdjson(path.join(dir, `${t}.000.ndjson`));
  }
  const clinical = [];
  const n = Math.min(...Object.values(byType).map((a) => a.length));
  for (let i = 0; i < n; i++) for (const t of Object.keys(byType)) clinical.push(byType[t][i]);
  return { patients, clinical };
}

// Rewrites references in place: Patient/... -> the patient's urn, conditional
// ones -> literal ids.
function rewriteRefs(node, patientRef) {
  if (Array.isArray(node)) {
    for (const x of node) rewriteRefs(x, patientRef);
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'reference' && typeof v === 'string') {
        if (v.startsWith('Patient/')) {
          node[k] = patientRef;
        } else if (v.includes('?')) {
          const type = v.slice(0, v.indexOf('?'));
          const value = v.slice(v.lastIndexOf('|') + 1).replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 64) || 'x';
          node[k] = `${type}/${value}`;
        }
      } else {
        rewriteRefs(v, patientRef);
      }
    }
  }
}

function makePatient(tpl, rnd, n) {
  const p = structuredClone(tpl);
  delete p.id;
  const fresh = uuid(rnd);
  for (const id of p.identifier ?? []) {
    if (/^[0-9a-f-]{36}$/.test(id.value ?? '')) id.value = fresh;
  }
  for (const name of p.name ?? []) if (name.family) name.family = `${name.family}-${n}`;
  return p;
}

function makeClinical(tpl, patientRef) {
  const r = structuredClone(tpl);
  delete r.id;
  rewriteRefs(r, patientRef);
  return r;
}

// Generator of transaction bundles; yields { bundle, count }.
function* bundles(tpls, total, perBundle, seed) {
  const rnd = prng(seed);
  const perPatient = 5;
  let made = 0;
  let patientNo = 0;
  let clinicalNo = 0;
  while (made < total) {
    const entry = [];
    const n = Math.min(perBundle, total - made);
    while (entry.length < n) {
      const pUrn = `urn:uuid:${uuid(rnd)}`;
      entry.push({
        fullUrl: pUrn,
        resource: makePatient(tpls.patients[patientNo % tpls.patients.length], rnd, patientNo),
        request: { method: 'POST', url: 'Patient' },
      });
      patientNo++;
      for (let k = 1; k < perPatient && entry.length < n; k++) {
        const r = makeClinical(tpls.clinical[clinicalNo++ % tpls.clinical.length], pUrn);
        entry.push({ fullUrl: `urn:uuid:${uuid(rnd)}`, resource: r, request: { method: 'POST', url: r.resourceType } });
      }
    }
    made += entry.length;
    yield { bundle: { resourceType: 'Bundle', type: 'transaction', entry }, count: entry.length };
  }
}

const LOCATION = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[^/]+)?$/;

async function load(a) {
  const base = a.base ?? die('--base is required');
  const total = Number(a.resources ?? 100000);
  const perBundle = Number(a.bundle ?? 500);
  const concurrency = Number(a.concurrency ?? 4);
  const outDir = a.out ?? die('--out is required');
  const timeoutMs = Number(a['timeout-seconds'] ?? 300) * 1000;
  const tpls = templates(a.synthea ?? die('--synthea is required'));
  const gen = bundles(tpls, total, perBundle, 4242);
  const ids = [];
  const patients = [];
  let bytes = 0;
  let stored = 0;
  const t0 = performance.now();
  const deadline = Date.now() + timeoutMs;

  async function worker() {
    for (;;) {
      const next = gen.next();
      if (next.done) return;
      if (Date.now() > deadline) die(`load did not finish within ${timeoutMs / 1000}s (${stored} resources stored)`);
      const text = JSON.stringify(next.value.bundle);
      bytes += next.value.bundle.entry.reduce((s, e) => s + JSON.stringify(e.resource).length, 0);
      const res = await fetch(`${base}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' },
        body: text,
        signal: AbortSignal.timeout(120000),
      });
      const body = await res.text();
      if (res.status !== 200) die(`transaction answered ${res.status}: ${body.slice(0, 600)}`);
      const reply = JSON.parse(body);
      const entries = reply.entry ?? [];
      if (entries.length !== next.value.count) die(`transaction reply has ${entries.length} entries, sent ${next.value.count}`);
      for (const e of entries) {
        const status = String(e.response?.status ?? '');
        if (!status.startsWith('201')) die(`transaction entry answered '${status}': ${JSON.stringify(e).slice(0, 400)}`);
        const loc = e.response?.location ?? '';
        const m = LOCATION.exec(loc);
        if (!m) die(`cannot parse entry location '${loc}'`);
        ids.push(`${m[1]}/${m[2]}`);
        if (m[1] === 'Patient') patients.push(m[2]);
      }
      stored += entries.length;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'ids.txt'), ids.join('\n') + '\n');
  fs.writeFileSync(path.join(outDir, 'patients.txt'), patients.join('\n') + '\n');
  console.log(
    JSON.stringify({
      resources: stored,
      patients: patients.length,
      bundles: Math.ceil(total / perBundle),
      bundle_entries: perBundle,
      concurrency,
      seconds: Number(seconds.toFixed(2)),
      per_second: Math.round(stored / seconds),
      avg_resource_bytes: Math.round(bytes / stored),
    }),
  );
}

function bodies(a) {
  const outDir = a.out ?? die('--out is required');
  const tpls = templates(a.synthea ?? die('--synthea is required'));
  const rnd = prng(777);
  fs.mkdirSync(outDir, { recursive: true });
  const patient = makePatient(tpls.patients[0], rnd, 0);
  fs.writeFileSync(path.join(outDir, 'create-patient.json'), JSON.stringify(patient));
  // update: '{"resourceType":"Patient","id":"' .. id .. '",' .. rest
  const { resourceType, ...rest } = makePatient(tpls.patients[1], rnd, 1);
  fs.writeFileSync(path.join(outDir, 'update-rest.txt'), JSON.stringify(rest).slice(1));
  const tx = bundles(tpls, 10, 10, 99).next().value.bundle;
  if (tx.entry.length !== 10) die('tx10 does not have 10 entries');
  fs.writeFileSync(path.join(outDir, 'tx10.json'), JSON.stringify(tx));
  console.log(
    JSON.stringify({
      create_bytes: JSON.stringify(patient).length,
      tx10_bytes: JSON.stringify(tx).length,
    }),
  );
}

async function fetchStatic(a) {
  const base = a.base ?? die('--base is required');
  const all = fs.readFileSync(a.ids ?? die('--ids is required'), 'utf8').split('\n').filter(Boolean);
  const count = Math.min(Number(a.count ?? 1000), all.length);
  const root = a.out ?? die('--out is required');
  const picked = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const id = all[Math.floor((i * all.length) / count)];
    const res = await fetch(`${base}/${id}`, { signal: AbortSignal.timeout(10000) });
    const buf = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) die(`GET ${id} answered ${res.status}`);
    const file = path.join(root, 'fhir', id);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, buf);
    picked.push(id);
    bytes += buf.length;
  }
  fs.writeFileSync(path.join(root, 'ids.txt'), picked.join('\n') + '\n');
  console.log(JSON.stringify({ files: count, avg_bytes: Math.round(bytes / count) }));
}

const a = args();
if (a._ === 'load') await load(a);
else if (a._ === 'bodies') bodies(a);
else if (a._ === 'fetch') await fetchStatic(a);
else die('usage: node data.mjs load|bodies|fetch ... (see the header comment)');
