// Random identifiers: resource ids and request ids.
#pragma once

#include <string>

namespace bevan {

// A random RFC 4122 version 4 UUID in lower case ("0f8fad5b-d9cb-469f-a165-70867728950e"),
// a valid FHIR id. Thread-safe (a generator per thread, seeded from the OS).
std::string NewUuid();

// `n` random lower-case hex digits. Thread-safe.
std::string RandomHex(size_t n);

}  // namespace bevan
