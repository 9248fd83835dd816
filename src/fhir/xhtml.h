// Checks of FHIR narrative XHTML (Narrative.div): well-formedness, the root
// element, and the R4 narrative rules (txt-1: only basic HTML formatting
// elements, no scripts, forms, frames or event handlers; txt-2: some
// non-whitespace content).
#pragma once

#include <string>
#include <string_view>

namespace bevan::fhir {

enum class XhtmlProblem : uint8_t {
  kNone,
  kMalformed,  // not well-formed, or not a <div> in the XHTML namespace
  kUnsafe,     // forbidden element, event handler attribute, script URL
  kEmpty,      // no text or element content (txt-2)
};

struct XhtmlCheck {
  XhtmlProblem problem = XhtmlProblem::kNone;
  std::string message;
};

XhtmlCheck CheckNarrativeXhtml(std::string_view xhtml);

}  // namespace bevan::fhir
