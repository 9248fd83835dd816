#!/usr/bin/env python3
"""Regenerates the seed corpora in fuzz/corpus/ from the project's own test
data (tests/validation, tests/search/queries.txt) and the HL7 FHIRPath suite
in ../shared (expressions only), plus hand-written seeds in this file.
Run from the repository root: fuzz/make-seeds.py. Seeds are named by the
SHA-1 of their content, as libFuzzer names corpus files."""
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("BEVAN_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    seen = set()
    for s in seeds:
        b = s.encode() if isinstance(s, str) else s
        h = hashlib.sha1(b).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        with open(os.path.join(d, h), "wb") as f:
            f.write(b)
    print(f"{target}: {len(seen)} seeds")


def every(items, n):
    """About n items spread evenly over the list."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


# --- fuzz_json: resources from the validation cases (valid and invalid),
# the raw-text syntax cases, and hand-written edge cases of the grammar.
resources = []
for path in sorted(glob.glob(os.path.join(ROOT, "tests", "validation", "*.cases.json"))):
    with open(path) as f:
        cases = json.load(f)
    for c in cases:
        r = c.get("resource")
        if isinstance(r, str):
            resources.append(r)  # raw text: syntax cases
        elif r is not None:
            resources.append(json.dumps(r, separators=(",", ":"), ensure_ascii=False))
json_seeds = every(resources, 40) + [
    '{"a":"\\u00e9\\/\\"\\\\\\b\\f\\n\\r\\t\\u0001","b":"\\ud83d\\ude00"}',
    '[1.50,-0.0,1e2,1E-2,0,-1,12345678901234567890,1.7976931348623157e309]',
    '{"a":[[[[[[[[[[{}]]]]]]]]]]}',
    '[true,false,null,"",{},[]]',
    '  {\n  "resourceType" : "Patient" ,\n  "_birthDate" : { "extension" : [ ] }\n}\n',
    '"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"',
    '{"k":1,"k":2}',
    '[01]',
    '"\\ud800"',
]
write("fuzz_json", json_seeds)

# --- fuzz_fhirpath: expressions of the HL7 R4 suite (not its inputs).
tree = ET.parse(os.path.join(SHARED, "conformance", "fhirpath-r4", "tests-fhir-r4.xml"))
exprs = []
for e in tree.iter():
    if e.tag.endswith("expression") and e.text:
        exprs.append(e.text.strip())
exprs = sorted(set(exprs), key=exprs.index)
fp_seeds = every(exprs, 60) + [
    "Patient.name.where(use = 'official').given.first()",
    "name.given.select($this.length()).aggregate($this + $total, 0)",
    "birthDate + 1 year - 2 'wk' > @2000-01-01",
    "extension('http://example.org/ext/weight').value.ofType(Quantity).value > 70 'kg'.value",
    "generalPractitioner.resolve() is Practitioner",
    "descendants().count()",
    "repeat(children()).ofType(string).distinct()",
    "identifier.where(system = 'https://fhir.nhs.uk/Id/nhs-number').value.matches('^[0-9]{10}$')",
    "address.line.replaceMatches('([0-9]+)', 'no. $1')",
    "(1.0 / 3).round(5) | 2.5 'mg'.toString() | @T14:30:00.000",
    "iif(active, %resource.id, {}).combine(gender.toString().upper())",
    "telecom.all(rank.exists() implies rank >= 1) and contact.exists() xor false",
    "%resource.children().trace('t').type().name",
]
write("fuzz_fhirpath", fp_seeds)

# --- fuzz_search_url: query strings (the part after '?') of the hand-written
# search cases, plus modifiers, chains, escapes and percent-encoding.
queries = []
with open(os.path.join(ROOT, "tests", "search", "queries.txt")) as f:
    for line in f:
        line = line.strip()
        if not line or line.startswith("#") or "?" not in line:
            continue
        queries.append(line.split("?", 1)[1])
sq_seeds = every(queries, 50) + [
    "subject:Patient.name=smith&_include=Observation:subject&_revinclude=Provenance:target&_count=10",
    "_has:Observation:patient:code=http://loinc.org|8867-4&_sort=-birthdate,_id",
    "code-value-quantity=http://loinc.org|8480-6$gt100|http://unitsofmeasure.org|mm[Hg]",
    "value-quantity=ap5.4e-3|http://unitsofmeasure.org|g&date=ge2020-01&date=lt2021",
    "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009,a\\,b\\|c\\$d\\\\&name:contains=%C3%A5ng",
    "family:missing=true&gender:not=male&_summary=count&_total=accurate&_elements=id,name",
    "subject=http://127.0.0.1:8080/fhir/Patient/1&_cursor=abc&_lastUpdated=sa2024-01-01T00:00:00%2B01:00",
    "general-practitioner:identifier=urn:oid:1.2|x&organization.name:exact=Surgery+One",
    "url:below=http://example.org/fhir/&_id=a,b,c&_text=x&_filter=y",
]
write("fuzz_search_url", sq_seeds)

# --- fuzz_bundle: batch and transaction Bundles.
def bundle(kind, entries):
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries})

patient = {"resourceType": "Patient", "active": True, "name": [{"family": "Bloggs", "given": ["Jo"]}],
           "identifier": [{"system": "http://example.org/mrn", "value": "42"}], "birthDate": "1970-01-01"}
obs = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
       "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
       "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
uuid = "urn:uuid:11111111-1111-4111-8111-111111111111"
patch = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
    {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.active"},
    {"name": "value", "valueBoolean": False}]}]}
b_seeds = [
    bundle("transaction", [{"fullUrl": uuid, "resource": patient, "request": {"method": "POST", "url": "Patient"}},
                           {"resource": obs, "request": {"method": "POST", "url": "Observation"}}]),
    bundle("transaction", [{"fullUrl": uuid, "resource": patient,
                            "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=http://example.org/mrn|42"}},
                           {"resource": dict(obs, subject={"reference": "Patient?identifier=http://example.org/mrn|42"}),
                            "request": {"method": "POST", "url": "Observation"}}]),
    bundle("transaction", [{"resource": dict(patient, id="p1"), "request": {"method": "PUT", "url": "Patient/p1"}},
                           {"resource": patch, "request": {"method": "PATCH", "url": "Patient/p1"}},
                           {"request": {"method": "GET", "url": "Patient?name=bloggs&_count=1"}},
                           {"request": {"method": "DELETE", "url": "Patient?identifier=x|y"}}]),
    bundle("batch", [{"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
                     {"request": {"method": "GET", "url": "Patient/missing"}},
                     {"resource": {"resourceType": "Patient", "birthDate": "bad"}, "request": {"method": "POST", "url": "Patient"}},
                     {"request": {"method": "GET", "url": "Observation?subject=Patient/1&_include=Observation:subject"}},
                     {"request": {"method": "GET", "url": "metadata"}},
                     {"request": {"method": "GET", "url": "Patient/_history?_count=2"}}]),
    bundle("batch", [{"resource": dict(patient, id="p2"), "request": {"method": "PUT", "url": "Patient/p2", "ifMatch": "W/\"1\""}},
                     {"resource": dict(patient, id="p2"), "request": {"method": "PUT", "url": "Patient?identifier=http://example.org/mrn|42"}},
                     {"request": {"method": "DELETE", "url": "Patient/p2"}},
                     {"request": {"method": "GET", "url": "Patient/p2/_history/1"}},
                     {"request": {"method": "HEAD", "url": "Patient/p2"}}]),
    bundle("transaction", [{"fullUrl": "http://fuzz/fhir/Patient/abc", "resource": dict(patient, id="abc"),
                            "request": {"method": "PUT", "url": "Patient/abc"}},
                           {"resource": dict(obs, subject={"reference": "http://fuzz/fhir/Patient/abc"}),
                            "request": {"method": "POST", "url": "Observation"}},
                           {"fullUrl": uuid, "resource": patient, "request": {"method": "POST", "url": "Patient"}},
                           {"fullUrl": uuid, "resource": patient, "request": {"method": "POST", "url": "Patient"}}]),
    bundle("transaction", [{"resource": {"resourceType": "Bundle", "type": "collection"}, "request": {"method": "POST", "url": "Bundle"}},
                           {"resource": {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o"}],
                                         "managingOrganization": {"reference": "#o"}}, "request": {"method": "POST", "url": "Patient"}}]),
    bundle("collection", []),
    bundle("transaction", []),
    '{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient?_id=a,b&_sort=-_lastUpdated"}},{}]}',
    '{"resourceType":"Patient"}',
    '{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Observation"}}]}',
]
write("fuzz_bundle", b_seeds)

# --- fuzz_jwt: tokens signed with the target's own test keys (read from
# fuzz_jwt.cpp), broken variants, JWKS documents and bare claims objects.
import base64
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

with open(os.path.join(ROOT, "fuzz", "fuzz_jwt.cpp")) as f:
    src = f.read()
pems = dict(re.findall(r'k(Es256|Rs256)Pem = R"\(\n(.*?)\)"', src, re.S))
es_key = serialization.load_pem_private_key(pems["Es256"].encode(), None)
rs_key = serialization.load_pem_private_key(pems["Rs256"].encode(), None)
NOW = 1700000000


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jws(header, claims, key=None):
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64((claims if isinstance(claims, str) else json.dumps(claims, separators=(",", ":"))).encode())
    signing_input = f"{h}.{p}".encode()
    if key is es_key:
        r, s = decode_dss_signature(es_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif key is rs_key:
        sig = rs_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = b""
    return f"{h}.{p}.{b64(sig)}"


def jwk(key, kid, alg):
    n = key.public_key().public_numbers()
    if alg.startswith("ES"):
        return {"kty": "EC", "kid": kid, "alg": alg, "use": "sig", "crv": "P-256",
                "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
    return {"kty": "RSA", "kid": kid, "alg": alg, "use": "sig",
            "n": b64(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")), "e": b64(n.e.to_bytes(3, "big"))}


good = {"iss": "https://issuer.example", "sub": "user1", "aud": "https://fuzz/fhir", "exp": NOW + 600,
        "iat": NOW - 10, "nbf": NOW - 10, "jti": "j1", "scope": "patient/*.rs openid fhirUser",
        "client_id": "app", "fhirUser": "Practitioner/1", "patient": "p1"}
es_h = {"alg": "ES256", "typ": "JWT", "kid": "fuzz-es256"}
rs_h = {"alg": "RS256", "typ": "JWT", "kid": "fuzz-rs256"}
jwks = {"keys": [jwk(es_key, "fuzz-es256", "ES256"), jwk(rs_key, "fuzz-rs256", "RS256")]}
jwt_seeds = [
    jws(es_h, good, es_key),
    jws(rs_h, good, rs_key),
    jws(rs_h, dict(good, aud=["x", "https://fuzz/fhir"], scope=["a", "b"], exp=NOW + 0.5), rs_key),
    jws(es_h, dict(good, exp=NOW - 3600), es_key),
    jws(es_h, dict(good, nbf=NOW + 3600), es_key),
    jws(es_h, dict(good, aud="other"), es_key),
    jws(es_h, {k: v for k, v in good.items() if k != "exp"}, es_key),
    jws({"alg": "ES256"}, good, es_key),
    jws({"alg": "RS256", "kid": "fuzz-es256"}, good, rs_key),
    jws({"alg": "ES256", "kid": "nope"}, good, es_key),
    jws({"alg": "ES256", "kid": "fuzz-es256", "crit": ["b64"]}, good, es_key),
    jws({"alg": "none"}, good),
    jws({"alg": "HS256", "kid": "fuzz-rs256"}, good),
    jws(es_h, "[1,2]", es_key),
    "eyJhbGciOiJFUzI1NiJ9.e30",
    "a.b.c",
    "..",
    "eyJhbGciOiJFUzI1NiJ9.e30.AA==",
    json.dumps(jwks),
    json.dumps({"keys": [dict(jwk(es_key, "k", "ES256"), alg=None) | {"alg": "ES384", "crv": "P-384"}]}),
    json.dumps({"keys": [{"kty": "oct", "k": "AAAA"}, {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}),
    json.dumps({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}),
    json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]}),
    json.dumps({"keys": []}),
    json.dumps(good),
    json.dumps(dict(good, iat=1e300, exp=-1, aud=[1, None])),
]
write("fuzz_jwt", jwt_seeds)
