// `bevan fhirpath EXPRESSION [FILE|-]`: evaluates a FHIRPath expression over
// a FHIR resource (JSON) and prints the result collection.
#pragma once

#include <string>

namespace bevan::cli {

struct FhirpathArgs {
  std::string expression;
  std::string file;          // "" or "-": standard input; "" with no input piped evaluates without a resource
  bool trace = false;        // print trace() output on standard error
  bool lenient = false;      // accept choice-type JSON names (Observation.valueQuantity)
  std::string context_type;  // compile against this type instead of the resource's resourceType
};

// Prints the result as a JSON array of {"type": ..., "value": ...}, one item
// per line. Returns 0 on success, 1 when the expression does not compile or
// fails to evaluate (message on standard error), 2 when the input cannot be
// read or is not JSON.
int RunFhirpath(const FhirpathArgs& args);

}  // namespace bevan::cli
