// Starts `build/bevan serve` on a free loopback port with a fresh SQLite file
// and returns {baseUrl, stop(), kill(), dbPath}.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const bevan = process.env.BEVAN_BIN ?? path.join(root, 'build/bevan');

export function tempDb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bevan-e2e-'));
  return path.join(dir, 'bevan.db');
}

export async function startServer({ dbPath = tempDb(), port = 0, extraArgs = [] } = {}) {
  if (!fs.existsSync(bevan)) throw new Error(`${bevan} not found: run make build first`);
  const child = spawn(bevan, ['serve', '--db', `sqlite:${dbPath}`, '--port', String(port), ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /serving FHIR R4 at (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    baseUrl,
    dbPath,
    child,
    exited,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      return exited;
    },
  };
}
