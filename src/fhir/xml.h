// FHIR R4 XML to FHIR JSON, driven by the generated model (model.h).
//
// The conversion follows the R4 XML and JSON representation rules:
//   - the root element names the resource type (namespace http://hl7.org/fhir)
//     and becomes "resourceType";
//   - elements that repeat in the model (max > 1) become arrays, the others
//     single values; a second occurrence of a single element is an error;
//   - a primitive's `value` attribute becomes the JSON scalar of its type's
//     JSON kind: strings, `true`/`false`, and numbers written exactly as the
//     attribute has them (decimals keep their precision: "1.50" stays 1.50);
//   - a primitive's `id` attribute and `extension` children go to `_name`
//     (in arrays aligned with the values, with null where an item has none);
//   - `id` on other elements and `url` on extensions are attributes in XML
//     and members in JSON;
//   - choice elements keep their XML name (`valueQuantity`);
//   - elements of a resource type (`contained`, `Bundle.entry.resource`,
//     `Parameters.parameter.resource`) wrap one element named after the
//     resource type;
//   - `Narrative.div` (XHTML namespace) becomes a string: the div subtree
//     re-serialised as XML with xmlns="http://www.w3.org/1999/xhtml" on the
//     div, elements unprefixed (xmlns declared where a namespace changes),
//     comments and processing instructions dropped.
// Comments elsewhere are dropped; whitespace between elements is ignored.
//
// Errors are InvalidArgument with the 1-based line and column of the
// problem: malformed XML ("XML error at line 3, column 7: mismatched tag"),
// DOCTYPE declarations (never allowed, which also rules out entity
// expansion attacks), limits exceeded, and FHIR structure errors such as
// unknown elements ("FHIR XML error at line 4, column 5 (Patient.foo):
// unknown element 'foo' in Patient"). The JSON produced is not validated:
// run fhir::Validate on it.
//
// Thread-safe: every call has its own parser; the model is immutable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "json/json.h"

namespace bevan::fhir {

inline constexpr std::string_view kFhirXmlNamespace = "http://hl7.org/fhir";
inline constexpr std::string_view kXhtmlXmlNamespace = "http://www.w3.org/1999/xhtml";

struct XmlOptions {
  size_t max_size = 64u << 20;  // bytes of input
  uint32_t max_depth = 128;     // nesting of elements
};

struct XmlElement;

// One item of an element's content, in document order: a child element, or
// character data (element is null; CDATA sections are text too).
struct XmlContent {
  std::unique_ptr<XmlElement> element;
  std::string text;
};

struct XmlAttribute {
  std::string ns;    // namespace URI, "" for unprefixed attributes
  std::string name;  // local name
  std::string value;
};

// A parsed XML element with namespace-resolved names. Namespace
// declarations are applied, not listed as attributes.
struct XmlElement {
  std::string ns;    // namespace URI ("" when none)
  std::string name;  // local name
  std::vector<XmlAttribute> attributes;
  std::vector<XmlContent> content;
  uint32_t line = 0;    // of the start tag, 1-based
  uint32_t column = 0;  // 1-based, in bytes

  // The value of the unprefixed attribute `name`, or null if absent.
  const std::string* Attribute(std::string_view attribute) const;
  // The child elements, optionally only those with local name `child_name`.
  std::vector<const XmlElement*> Children(std::string_view child_name = {}) const;
  // The first child element named `child_name`, or null.
  const XmlElement* FirstChild(std::string_view child_name) const;
  // All character data directly inside, concatenated.
  std::string Text() const;
};

// Parses an XML document (UTF-8, UTF-16 or ISO-8859-1 per its declaration;
// the tree is UTF-8) and returns its root element. Rejects DOCTYPE.
Result<std::unique_ptr<XmlElement>> ParseXml(std::string_view xml, const XmlOptions& options = {});

// Converts one FHIR resource element (e.g. the root of ParseXml, or a
// resource embedded in another XML document) to JSON built in `doc`.
Result<json::Value> FhirXmlElementToJson(const XmlElement& resource, json::Document& doc);

// Parses a FHIR XML resource into a JSON document (its root is the resource).
Result<json::Document> ParseFhirXml(std::string_view xml, const XmlOptions& options = {});

// The same, written as compact JSON text.
Result<std::string> FhirXmlToJson(std::string_view xml, const XmlOptions& options = {});

// The XML text of an XHTML subtree as it appears in FHIR JSON's
// Narrative.div (see above). Exposed for tests and tools.
std::string SerializeXhtml(const XmlElement& div);

}  // namespace bevan::fhir
