// Synthetic data for an English NHS trust: patients with test-range NHS
// numbers, GP practices, trust sites, practitioners, clinics, appointments,
// encounters, problems, NEWS2 vital signs, repeat prescriptions,
// immunisations, referrals with RTT clocks and national data opt-outs.
//
// Deterministic: the same Options give byte-identical output on every run
// (xoshiro256** seeded from Options::seed; no clocks, no unordered
// containers, integer arithmetic except a few plain IEEE double operations
// for vital-sign values, so other platforms agree unless their compiler
// contracts them into fused multiply-adds). Streaming: shared resources first, then each
// patient with everything that belongs to them, so memory does not grow with
// the number of patients. Every resource is valid FHIR R4 (checked by
// synth_test with the full validator and invariants) and every reference is
// a relative `Type/id` to a resource written in the same run.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bevan::synth {

enum class ResourceType : uint8_t {
  kOrganization,
  kLocation,
  kPractitioner,
  kPractitionerRole,
  kSchedule,
  kPatient,
  kConsent,
  kCondition,
  kMedicationRequest,
  kImmunization,
  kServiceRequest,
  kSlot,
  kAppointment,
  kEncounter,
  kObservation,
};
inline constexpr size_t kResourceTypeCount = 15;

// "Patient", "Observation", ...
std::string_view ResourceTypeName(ResourceType type);

// Receives each resource as one line of compact JSON (no newline).
class Sink {
 public:
  virtual ~Sink() = default;
  // `json` is only valid during the call. A non-OK Status stops generation.
  virtual Status Write(ResourceType type, std::string_view json) = 0;
};

// The largest number of patients: the NHS number test range 999 000 0000 to
// 999 999 9999 holds about 909,000 valid numbers.
inline constexpr uint32_t kMaxPatients = 900'000;

struct Options {
  uint32_t patients = 100;  // 1..kMaxPatients
  uint64_t seed = 1;
  // The trust's ODS code (3 upper-case letters/digits, e.g. "RR8"); sites
  // are this plus two digits. The default is not a real trust.
  std::string trust_ods = "RZZ";
  // The day "now" (days since 1970-01-01): history runs up to it, booked
  // appointments and the waiting list after it. Default 2026-04-01.
  int32_t as_of = 20544;
};

struct Counts {
  std::array<uint64_t, kResourceTypeCount> by_type{};
  uint64_t total() const {
    uint64_t t = 0;
    for (uint64_t c : by_type) t += c;
    return t;
  }
};

// Checks `options` (InvalidArgument naming the bad field).
Status CheckOptions(const Options& options);

// Generates everything into `sink`. Errors: InvalidArgument for bad options,
// or the sink's first error.
Result<Counts> Generate(const Options& options, Sink& sink);

// Generates into `dir` (created if missing): one `<Type>.ndjson` per resource
// type, replacing existing files, buffered, one resource per line. IoError
// when a file cannot be written.
Result<Counts> GenerateToDirectory(const Options& options, const std::string& dir);

}  // namespace bevan::synth
