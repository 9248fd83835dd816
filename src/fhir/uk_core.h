// UK Core identifier rules: NHS numbers and ODS codes.
#pragma once

#include <string_view>

namespace bevan::fhir::uk {

inline constexpr std::string_view kNhsNumberSystem = "https://fhir.nhs.uk/Id/nhs-number";
inline constexpr std::string_view kOdsOrganizationSystem = "https://fhir.nhs.uk/Id/ods-organization-code";
inline constexpr std::string_view kOdsSiteSystem = "https://fhir.nhs.uk/Id/ods-site-code";

// True if `s` is ten digits whose last is the Modulus 11 check digit of the
// first nine (weights 10..2; check = 11 - sum % 11; 11 becomes 0; 10 is invalid).
bool IsValidNhsNumber(std::string_view s);

// The Modulus 11 check digit for nine digits, or -1 when none exists (10).
// `nine` must be nine ASCII digits.
int NhsCheckDigit(std::string_view nine);

// True if `s` has the form of an ODS code: 3 to 10 upper-case letters and
// digits (organisations such as "RR8" or "A81001", sites such as "RR813").
bool IsValidOdsCode(std::string_view s);

}  // namespace bevan::fhir::uk
