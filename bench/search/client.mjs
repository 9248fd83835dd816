// The client of bench/search/run (Node.js 20, no dependencies).
//
//   node client.mjs load --base URL --dir DIR [--batch 500] [--concurrency 2] [--timeout-seconds 900]
//       POSTs every resource of DIR/*.ndjson to URL as batch Bundles of PUT
//       entries (ids kept, so references between the files hold). Prints
//       {"resources":N,"seconds":S,"per_second":R} and fails on any entry error.
//   node client.mjs queries --dir DIR [--per-shape 200] [--seed 1] > queries.json
//       Realistic searches drawn from the data itself (values that exist):
//       one list of query strings per shape.
//   node client.mjs run --bevan URL --peer URL --queries FILE [--iterations 300]
//       [--seconds-per-shape 10] [--peer-iterations 5] [--peer-seconds-per-shape 60]
//       [--concurrency 4] [--concurrent-requests 1000] > results.json
//       Per shape, Bevan alone: one request in flight, up to --iterations
//       queries within --seconds-per-shape (p50 / p99, req/s), then
//       --concurrency requests in flight, --concurrent-requests queries within
//       the same time bound (req/s). Then, every shape again, the first
//       --peer-iterations queries sent to both servers in turn (order
//       alternating; the peer's latencies, and whether the two agree on the
//       number of matches and included resources). Keep-alive throughout. The
//       peer scans every resource of the type (seconds per query at 10k
//       patients), hence its own budget, after all of Bevan's measurements.
//   node client.mjs report --results A.json [--results B.json ...] --out FILE.md
//       p50 / p99 and req/s per shape and server, ratios, agreement, and the
//       growth between the first and last results file (1k -> 10k patients).
import fs from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
function args(name) {
  const out = [];
  process.argv.forEach((a, i) => {
    if (a === name && i + 1 < process.argv.length) out.push(process.argv[i + 1]);
  });
  return out;
}
function die(msg) {
  console.error(`bench/search/client: ${msg}`);
  process.exit(1);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function request(method, url, body, timeoutMs = 120000) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const data = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        method,
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        agent,
        headers: {
          Accept: 'application/fhir+json',
          ...(data ? { 'Content-Type': 'application/fhir+json', 'Content-Length': data.length } : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url}`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function* ndjsonLines(dir) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ndjson')).sort();
  for (const f of files) {
    const rl = readline.createInterface({ input: fs.createReadStream(`${dir}/${f}`), crlfDelay: Infinity });
    for await (const line of rl) if (line.trim()) yield line;
  }
}

// ---- load -------------------------------------------------------------------
async function load() {
  const base = arg('--base') ?? die('--base is required');
  const dir = arg('--dir') ?? die('--dir is required');
  const batch = Number(arg('--batch', '500'));
  const concurrency = Number(arg('--concurrency', '2'));
  const deadline = Date.now() + Number(arg('--timeout-seconds', '900')) * 1000;
  const start = Date.now();
  let n = 0;
  const inflight = new Set();
  const send = async (entries) => {
    const bundle = `{"resourceType":"Bundle","type":"batch","entry":[${entries.join(',')}]}`;
    const r = await request('POST', base, bundle, 600000);
    if (r.status !== 200) die(`batch answered ${r.status}: ${r.body.slice(0, 300)}`);
    const doc = JSON.parse(r.body);
    for (const e of doc.entry ?? []) {
      const s = e.response?.status ?? '';
      if (!s.startsWith('200') && !s.startsWith('201')) die(`batch entry answered ${s}: ${JSON.stringify(e).slice(0, 300)}`);
    }
  };
  let entries = [];
  for await (const line of ndjsonLines(dir)) {
    if (Date.now() > deadline) die('load timed out');
    const m = /^\{"resourceType":"([A-Za-z]+)","id":"([^"]+)"/.exec(line);
    if (!m) die(`resource without a leading resourceType and id: ${line.slice(0, 100)}`);
    entries.push(`{"resource":${line},"request":{"method":"PUT","url":"${m[1]}/${m[2]}"}}`);
    n++;
    if (entries.length >= batch) {
      const p = send(entries).finally(() => inflight.delete(p));
      inflight.add(p);
      entries = [];
      if (inflight.size >= concurrency) await Promise.race(inflight);
    }
  }
  if (entries.length) await send(entries);
  await Promise.all(inflight);
  const seconds = (Date.now() - start) / 1000;
  console.log(JSON.stringify({ resources: n, seconds, per_second: Math.round(n / seconds) }));
}

// ---- queries ------------------------------------------------------------------
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}
const ref = (r) => (r?.reference ?? '').replace(/^.*\/Patient\//, 'Patient/');

async function queries() {
  const dir = arg('--dir') ?? die('--dir is required');
  const per = Number(arg('--per-shape', '200'));
  const rand = rng(Number(arg('--seed', '1')));
  // Reservoir samples of the facts the queries need.
  const sample = (list, item) => {
    list.seen = (list.seen ?? 0) + 1;
    if (list.length < per) list.push(item);
    else {
      const j = Math.floor(rand() * list.seen);
      if (j < per) list[j] = item;
    }
  };
  const patients = [], observations = [], conditions = [], encounters = [];
  for await (const line of ndjsonLines(dir)) {
    const type = /^\{"resourceType":"([A-Za-z]+)"/.exec(line)?.[1];
    if (type === 'Patient') {
      const p = JSON.parse(line);
      if (p.name?.[0]?.family && p.birthDate) sample(patients, { id: p.id, family: p.name[0].family, birth: p.birthDate });
    } else if (type === 'Observation') {
      const o = JSON.parse(line);
      const c = o.code?.coding?.[0];
      const when = o.effectiveDateTime ?? o.effectivePeriod?.start;
      if (c && when && ref(o.subject).startsWith('Patient/')) {
        sample(observations, { patient: ref(o.subject), system: c.system, code: c.code, year: Number(when.slice(0, 4)) });
      }
    } else if (type === 'Condition') {
      const o = JSON.parse(line);
      const c = o.code?.coding?.[0];
      if (c && ref(o.subject).startsWith('Patient/')) sample(conditions, { patient: ref(o.subject), system: c.system, code: c.code });
    } else if (type === 'Encounter') {
      const o = JSON.parse(line);
      if (ref(o.subject).startsWith('Patient/')) sample(encounters, { patient: ref(o.subject) });
    }
  }
  const e = encodeURIComponent;
  const pick = (list, i) => list[i % list.length];
  const shapes = {
    'Observation?patient&code&date': (i) => {
      const o = pick(observations, i);
      return `Observation?patient=${e(o.patient)}&code=${e(`${o.system}|${o.code}`)}&date=ge${o.year - 1}-01-01`;
    },
    'Condition?code': (i) => {
      const c = pick(conditions, i);
      return `Condition?code=${e(`${c.system}|${c.code}`)}&_count=50`;
    },
    'Patient?family&birthdate': (i) => {
      const p = pick(patients, i);
      return `Patient?family=${e(p.family)}&birthdate=ge${Number(p.birth.slice(0, 4)) - 5}-01-01&_count=50`;
    },
    'Encounter?patient&_include': (i) =>
      `Encounter?patient=${e(pick(encounters, i).patient)}&_include=Encounter:practitioner&_count=50`,
    'Encounter?subject:Patient.family (chain)': (i) => `Encounter?subject:Patient.family=${e(pick(patients, i).family)}&_count=50`,
    'Patient?_has:Condition:patient:code': (i) => {
      const c = pick(conditions, i);
      return `Patient?_has:Condition:patient:code=${e(`${c.system}|${c.code}`)}&_count=50`;
    },
    'Encounter?patient&_sort=-date': (i) => `Encounter?patient=${e(pick(encounters, i).patient)}&_sort=-date&_count=20`,
    'Observation?code&_total=accurate': (i) => {
      const o = pick(observations, i);
      return `Observation?code=${e(`${o.system}|${o.code}`)}&_total=accurate&_count=10`;
    },
  };
  const out = {};
  for (const [name, make] of Object.entries(shapes)) {
    out[name] = [];
    for (let i = 0; i < per; i++) out[name].push(make(i));
  }
  console.log(JSON.stringify(out));
}

// ---- run ----------------------------------------------------------------------
function summarise(body, type) {
  try {
    const doc = JSON.parse(body);
    let matches = 0, included = 0;
    for (const en of doc.entry ?? []) {
      const mode = en.search?.mode;
      if (mode === 'outcome' || en.resource?.resourceType === 'OperationOutcome') continue;
      if (mode === 'include' || (mode === undefined && en.resource?.resourceType !== type)) included++;
      else matches++;
    }
    return { matches, included, total: doc.total ?? null, ignored: (doc.entry ?? []).some((x) => x.search?.mode === 'outcome') };
  } catch {
    return { matches: -1, included: -1, total: null, ignored: false };
  }
}

async function timed(url) {
  const t0 = process.hrtime.bigint();
  let r;
  try {
    r = await request('GET', url, undefined, 60000);
  } catch (err) {
    r = { status: 0, body: String(err) };
  }
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, status: r.status, body: r.body };
}

// Per shape, Bevan alone first (every shape), then the peer (every shape),
// so that the peer's garbage collection after a scan of every resource
// never runs beside Bevan's measurements on a shared machine:
//   1. Bevan, one request in flight: up to --iterations queries (cycling
//      through the list) within --seconds-per-shape; p50 / p99 and req/s;
//   2. Bevan, --concurrency requests in flight: --concurrent-requests queries
//      within --seconds-per-shape; req/s;
//   3. agreement: the first --peer-iterations queries (at most
//      --peer-seconds-per-shape on the peer) sent to both servers in turn
//      (order alternating); the peer's latencies and the match check.
async function run() {
  const servers = { bevan: arg('--bevan') ?? die('--bevan is required'), peer: arg('--peer') ?? die('--peer is required') };
  const qs = JSON.parse(fs.readFileSync(arg('--queries') ?? die('--queries is required'), 'utf8'));
  const iterations = Number(arg('--iterations', '300'));
  const limitMs = Number(arg('--seconds-per-shape', '10')) * 1000;
  const peerIterations = Number(arg('--peer-iterations', '5'));
  const peerLimitMs = Number(arg('--peer-seconds-per-shape', '60')) * 1000;
  const concurrency = Number(arg('--concurrency', '4'));
  const concurrentRequests = Number(arg('--concurrent-requests', '1000'));
  const results = {};
  for (const [shape, list] of Object.entries(qs)) {
    const type = list[0].split('?')[0];
    const rec = { bevan: [], peer: [], agree: 0, compared: 0, examples: [], bevan_wall_ms: 0, concurrent: null };
    results[shape] = rec;
    await request('GET', `${servers.bevan}/fhir/${list[0]}`).catch(() => {}); // warm-up, not measured
    const start = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - start) / 1e6;
    for (let i = 0; i < iterations && elapsed() <= limitMs; i++) {
      const r = await timed(`${servers.bevan}/fhir/${list[i % list.length]}`);
      const { matches, included } = summarise(r.body, type);
      rec.bevan.push({ ms: r.ms, status: r.status, matches, included });
      if (r.status !== 200 && rec.examples.length < 3) rec.examples.push({ server: 'bevan', status: r.status, body: r.body.slice(0, 200) });
    }
    rec.bevan_wall_ms = elapsed();

    if (concurrency > 1 && concurrentRequests > 0) {
      let next = 0, ok = 0, errors = 0;
      const c0 = process.hrtime.bigint();
      const cElapsed = () => Number(process.hrtime.bigint() - c0) / 1e6;
      const worker = async () => {
        while (next < concurrentRequests && cElapsed() <= limitMs) {
          const r = await timed(`${servers.bevan}/fhir/${list[next++ % list.length]}`);
          if (r.status === 200) ok++;
          else errors++;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      rec.concurrent = { in_flight: concurrency, ok, errors, wall_ms: cElapsed() };
    }
    const p = pct(rec.bevan.filter((x) => x.status === 200).map((x) => x.ms), 0.5).toFixed(2);
    console.error(
      `  ${shape}: bevan ${rec.bevan.length} queries, p50 ${p} ms` +
        (rec.concurrent ? `, ${((rec.concurrent.ok * 1000) / rec.concurrent.wall_ms).toFixed(0)} req/s at ${concurrency} in flight` : ''),
    );
  }
  for (const [shape, list] of Object.entries(qs)) {
    const type = list[0].split('?')[0];
    const rec = results[shape];
    if (peerIterations > 0) await request('GET', `${servers.peer}/fhir/${list[0]}`).catch(() => {}); // warm-up
    let peerSpent = 0;
    for (let i = 0; i < peerIterations && i < list.length && peerSpent <= peerLimitMs; i++) {
      const order = i % 2 ? ['peer', 'bevan'] : ['bevan', 'peer'];
      const got = {};
      for (const s of order) {
        const r = await timed(`${servers[s]}/fhir/${list[i]}`);
        if (s === 'peer') peerSpent += r.ms;
        got[s] = { ms: r.ms, status: r.status, ...summarise(r.body, type) };
        if (r.status !== 200 && rec.examples.length < 3) rec.examples.push({ server: s, status: r.status, body: r.body.slice(0, 200) });
      }
      rec.peer.push(got.peer);
      if (got.bevan.status === 200 && got.peer.status === 200) {
        rec.compared++;
        if (got.bevan.matches === got.peer.matches && got.bevan.included === got.peer.included) rec.agree++;
        else if (rec.examples.length < 3) rec.examples.push({ query: list[i], bevan: got.bevan, peer: got.peer });
      }
    }
    const p = pct(rec.peer.filter((x) => x.status === 200).map((x) => x.ms), 0.5).toFixed(2);
    console.error(`  ${shape}: peer ${rec.peer.length} queries, p50 ${p} ms; same matches ${rec.agree}/${rec.compared}`);
  }
  console.log(JSON.stringify(results));
}

function pct(values, q) {
  if (!values.length) return NaN;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(q * v.length))];
}

// ---- report -------------------------------------------------------------------
function report() {
  const files = args('--results');
  const labels = args('--label');
  if (!files.length) die('--results is required');
  const all = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
  const fmt = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '-');
  const lines = [];
  const stat = (rec, s) => {
    const ok = rec[s].filter((x) => x.status === 200).map((x) => x.ms);
    const sum = ok.reduce((a, b) => a + b, 0);
    // One in flight: requests per second of wall time (Bevan's own phase), or
    // of summed latency (the peer's samples are interleaved with Bevan's).
    const wall = s === 'bevan' && rec.bevan_wall_ms ? rec.bevan_wall_ms : sum;
    const good = rec[s].filter((x) => x.status === 200);
    const hits = good.reduce((a, x) => a + (x.matches ?? 0) + (x.included ?? 0), 0) / (good.length || 1);
    return { n: rec[s].length, ok: ok.length, p50: pct(ok, 0.5), p99: pct(ok, 0.99), rps: wall ? (ok.length * 1000) / wall : NaN, hits };
  };
  const crps = (rec) => (rec.concurrent ? (rec.concurrent.ok * 1000) / rec.concurrent.wall_ms : NaN);
  const inFlight = all.flatMap((r) => Object.values(r)).find((r) => r.concurrent)?.concurrent.in_flight;
  all.forEach((res, k) => {
    lines.push(`**${labels[k] ?? files[k]}**`, '');
    lines.push(
      `| query | entries | Bevan n | Bevan p50 / p99 ms | Bevan req/s (1${inFlight ? ` / ${inFlight}` : ''} in flight) | peer n | peer p50 / max ms | peer req/s | peer / Bevan (p50) | same matches |`,
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const [shape, rec] of Object.entries(res)) {
      const b = stat(rec, 'bevan'), p = stat(rec, 'peer');
      const peerMax = Math.max(...rec.peer.filter((x) => x.status === 200).map((x) => x.ms));
      const peerNote = p.ok < p.n ? ` (${p.n - p.ok} errors)` : '';
      const bNote = b.ok < b.n ? ` (${b.n - b.ok} errors)` : '';
      const cNote = rec.concurrent?.errors ? ` (${rec.concurrent.errors} errors)` : '';
      const ignored = rec.peer.some((x) => x.ignored);
      lines.push(
        `| \`${shape}\` | ${fmt(b.hits)} | ${b.n} | ${fmt(b.p50)} / ${fmt(b.p99)}${bNote} | ${fmt(b.rps)}${inFlight ? ` / ${fmt(crps(rec))}${cNote}` : ''} | ` +
          `${p.n} | ${fmt(p.p50)} / ${fmt(peerMax)}${peerNote} | ${fmt(p.rps)} | ` +
          `${p.ok ? fmt(p.p50 / b.p50) + 'x' : '-'} | ${rec.agree}/${rec.compared}${ignored ? ' (peer ignored a parameter)' : ''} |`,
      );
    }
    lines.push('');
    const diffs = [];
    for (const [, rec] of Object.entries(res)) {
      for (const ex of rec.examples.filter((x) => x.query).slice(0, 2)) {
        diffs.push(`- \`${decodeURIComponent(ex.query)}\`: Bevan ${ex.bevan.matches} matches + ${ex.bevan.included} included, peer ${ex.peer.matches} + ${ex.peer.included}`);
      }
    }
    if (diffs.length) lines.push('Different answers (first examples per query shape):', '', ...diffs, '');
  });
  if (all.length > 1) {
    const first = all[0], last = all[all.length - 1];
    lines.push(`**Growth ${labels[0] ?? 'first'} -> ${labels[all.length - 1] ?? 'last'}**`, '');
    lines.push(
      '| query | entries per answer | Bevan p50 ms | Bevan p50 growth | Bevan p99 growth | peer p50 growth |',
      '|---|---:|---:|---:|---:|---:|',
    );
    for (const shape of Object.keys(first)) {
      if (!last[shape]) continue;
      const a = (s) => stat(first[shape], s), z = (s) => stat(last[shape], s);
      lines.push(
        `| \`${shape}\` | ${fmt(a('bevan').hits)} -> ${fmt(z('bevan').hits)} | ${fmt(a('bevan').p50)} -> ${fmt(z('bevan').p50)} | ${fmt(z('bevan').p50 / a('bevan').p50)}x | ` +
          `${fmt(z('bevan').p99 / a('bevan').p99)}x | ${fmt(z('peer').p50 / a('peer').p50)}x |`,
      );
    }
    lines.push('');
  }
  fs.writeFileSync(arg('--out') ?? die('--out is required'), lines.join('\n'));
  console.log(lines.join('\n'));
}

const cmd = process.argv[2];
const commands = { load, queries, run, report };
if (!commands[cmd]) die(`usage: client.mjs load|queries|run|report ... (got ${cmd})`);
await commands[cmd]();
agent.destroy();
