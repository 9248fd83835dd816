// FHIRPath Patch (FHIR R4, http://hl7.org/fhir/R4/fhirpatch.html): a
// Parameters resource whose `operation` parameters edit a resource, each
// naming its target with a FHIRPath expression.
//
// Each operation's parts: `type` (add | insert | delete | replace | move),
// `path` (FHIRPath, compiled against the resource's type), and as the type
// needs them `name`, `value`, `index`, `source`, `destination`. A value is
// given as value[x] (with `_value[x]` for a primitive's id and extensions),
// as `resource`, or, for types Parameters cannot carry (backbone elements
// such as Patient.contact, or any complex type), as nested parts named after
// the elements of that type.
//
//   add      path selects one element; `name` is added to it: appended to a
//            repeating element (the array is created if absent); a single
//            element must not already have a value. Adding `extension` or
//            `id` to a primitive writes its `_name` part.
//   insert   path selects the items of a list (or, when the list is empty,
//            `parent.name` with exactly one parent); the value is inserted
//            at `index`, 0 <= index <= size.
//   delete   path selects one element (none: nothing happens), which is
//            removed with its `_name` part; an array left empty is removed,
//            and so is any element or `_name` object left empty by the
//            removal, up to the resource.
//   replace  path selects one element, whose value (and `_name` part) is
//            replaced; a choice element may change type (valueQuantity to
//            valueString).
//   move     path selects the items of a list; the item at `source` is
//            removed and reinserted at `destination` (both < size).
//
// JSON shapes follow the model (fhir/model.h): whether an element repeats,
// choice names (name + type: `value` with a valueString becomes
// `valueString`), `_name` arrays kept aligned with their value arrays
// (null where an item has no id or extension; dropped when all null).
// The value's type must fit the element: the same type, a specialisation of
// it (Age for Quantity) or, for primitives, any primitive with the same JSON
// kind (a valueString for a code or xhtml element).
//
// All or nothing: operations apply in order to the result of the previous
// one; the first error stops and nothing is returned. Errors are
// InvalidArgument and name the operation by its 0-based index and type:
// "FHIRPath Patch operation 1 (replace): path 'Patient.name.given' matches
// 3 elements; replace needs exactly one". The caller validates the result
// (fhir::Validate) and checks that resourceType and id are unchanged.
//
// The result is a new root built in `doc`: it shares unchanged subtrees
// with `resource` (whose storage must outlive it) and holds copies of the
// values taken from `parameters`. Not thread-safe for one `doc`.
#pragma once

#include "common/status.h"
#include "json/json.h"

namespace bevan::rest {

Result<json::Value> ApplyFhirPathPatch(json::Document& doc, const json::Value& resource, const json::Value& parameters);

}  // namespace bevan::rest
