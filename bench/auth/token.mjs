// The benchmark's backend client: `keygen DIR` makes an ES384 key pair and a
// clients file registering it (system/*.rs); `token DIR ORIGIN` runs the SMART
// client_credentials grant with a private_key_jwt assertion and prints the
// access token. Node's own crypto only.
import { generateKeyPairSync, createPrivateKey, sign, randomUUID } from "node:crypto";
import { writeFileSync, readFileSync } from "node:fs";

const [cmd, dir, origin] = process.argv.slice(2);
const b64url = (buf) => Buffer.from(buf).toString("base64url");

if (cmd === "keygen") {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
  writeFileSync(`${dir}/client-key.pem`, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  const jwk = publicKey.export({ format: "jwk" });
  const clients = [{
    client_id: "bench", type: "backend", scopes: ["system/*.rs"],
    jwks: { keys: [{ ...jwk, kid: "bench-1", alg: "ES384", use: "sig" }] },
  }];
  writeFileSync(`${dir}/clients.json`, JSON.stringify({ clients }, null, 2));
} else if (cmd === "token") {
  const key = createPrivateKey(readFileSync(`${dir}/client-key.pem`));
  const tokenUrl = `${origin}/auth/token`;
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "ES384", typ: "JWT", kid: "bench-1" };
  const claims = { iss: "bench", sub: "bench", aud: tokenUrl, exp: now + 240, iat: now, jti: randomUUID() };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign("sha384", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  const body = new URLSearchParams({
    grant_type: "client_credentials", scope: "system/*.rs",
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: `${input}.${b64url(sig)}`,
  });
  const res = await fetch(tokenUrl, { method: "POST", body, headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  const json = await res.json();
  if (!res.ok || !json.access_token) {
    console.error(`token request failed: ${res.status} ${JSON.stringify(json)}`);
    process.exit(1);
  }
  console.log(json.access_token);
} else {
  console.error("usage: token.mjs keygen DIR | token DIR ORIGIN");
  process.exit(2);
}
