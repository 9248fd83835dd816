// Runs bench/fhirpath/expressions.json with fhirpath.js (HL7's reference
// engine, R4 model, expressions compiled once) over the Synthea sample and
// prints one JSON line per expression: {name, evaluations, seconds,
// evals_per_sec, inputs, results, trues} (results and trues from one pass). Bundles are collection Bundles of 100 resources.
//
//   node bench/fhirpath/fhirpath-js-bench.mjs SYNTHEA_DIR [SECONDS_PER_EXPRESSION [NAME]]
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');

const dir = process.argv[2];
const budget = Number(process.argv[3] ?? '1');
const only = process.argv[4];
if (!dir || !fs.existsSync(dir)) {
  console.error('usage: fhirpath-js-bench.mjs SYNTHEA_DIR [SECONDS]');
  process.exit(2);
}
const here = path.dirname(new URL(import.meta.url).pathname);
const expressions = JSON.parse(fs.readFileSync(path.join(here, 'expressions.json'), 'utf8'));

const byType = new Map();
const all = [];
for (const f of fs.readdirSync(dir).sort()) {
  if (!f.endsWith('.ndjson') || f === 'log.ndjson') continue;
  for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    all.push(r);
    if (!byType.has(r.resourceType)) byType.set(r.resourceType, []);
    byType.get(r.resourceType).push(r);
  }
}
const bundles = [];
for (let i = 0; i < all.length; i += 100) {
  bundles.push({ resourceType: 'Bundle', type: 'collection', entry: all.slice(i, i + 100).map((resource) => ({ resource })) });
}
byType.set('Bundle', bundles);

for (const e of expressions) {
  if (only && e.name !== only) continue;
  const inputs = byType.get(e.input) ?? [];
  const fn = fhirpath.compile(e.expression, r4);
  // Check figures from one pass: result items, and how many of them are true.
  let results = 0;
  let trues = 0;
  for (const r of inputs) {
    const out = fn(r);
    results += out.length;
    trues += out.filter((x) => x === true).length;
  }
  let evaluations = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  // Bounded: whole passes over the inputs until the time budget is spent
  // (and at most 10 million evaluations).
  while (elapsed < budget && evaluations < 10_000_000) {
    for (const r of inputs) {
      fn(r);
      evaluations++;
    }
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  console.log(JSON.stringify({ name: e.name, evaluations, seconds: elapsed, evals_per_sec: evaluations / elapsed, inputs: inputs.length, results, trues }));
}
