#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "fhir/uk_core.h"
#include "fhir/validate.h"
#include "fhirpath/invariants.h"
#include "json/json.h"
#include "synth/calendar.h"
#include "synth/ndjson_sink.h"
#include "synth/synth.h"

namespace bevan::synth {
namespace {

TEST(Calendar, RoundTripsAndKnowsBst) {
  EXPECT_EQ(DaysFromCivil({1970, 1, 1}), 0);
  EXPECT_EQ(DaysFromCivil({2026, 4, 1}), 20544);
  EXPECT_EQ(Options().as_of, DaysFromCivil({2026, 4, 1}));
  for (int32_t d = -800000; d < 800000; d += 17) {
    CivilDate c = CivilFromDays(d);
    ASSERT_EQ(DaysFromCivil(c), d);
  }
  EXPECT_EQ(Weekday(DaysFromCivil({2026, 4, 1})), 3);  // a Wednesday
  EXPECT_FALSE(IsBritishSummerTime(DaysFromCivil({2025, 3, 29})));
  EXPECT_TRUE(IsBritishSummerTime(DaysFromCivil({2025, 3, 30})));
  EXPECT_TRUE(IsBritishSummerTime(DaysFromCivil({2025, 10, 25})));
  EXPECT_FALSE(IsBritishSummerTime(DaysFromCivil({2025, 10, 26})));
  std::string s;
  AppendLocalDateTime(static_cast<int64_t>(DaysFromCivil({2025, 7, 4})) * 1440 + 9 * 60 + 5, s);
  EXPECT_EQ(s, "2025-07-04T09:05:00+01:00");
  EXPECT_TRUE(ParseIsoDate("2024-02-29").ok());
  EXPECT_FALSE(ParseIsoDate("2023-02-29").ok());
  EXPECT_FALSE(ParseIsoDate("2023-2-28").ok());
}

TEST(Synth, RejectsBadOptions) {
  MemorySink sink;
  Options o;
  o.patients = 0;
  EXPECT_FALSE(Generate(o, sink).ok());
  o.patients = kMaxPatients + 1;
  EXPECT_FALSE(Generate(o, sink).ok());
  o.patients = 1;
  o.trust_ods = "rr8";
  EXPECT_FALSE(Generate(o, sink).ok());
  o.trust_ods = "RR8";
  EXPECT_TRUE(Generate(o, sink).ok());
}

void ForEachReference(const json::Value& v, const std::function<void(std::string_view)>& f) {
  if (v.is_object()) {
    for (const json::Member& m : v.members()) {
      if (m.name() == "reference" && m.value.is_string()) f(m.value.as_string());
      ForEachReference(m.value, f);
    }
  } else if (v.is_array()) {
    for (const json::Value& item : v.items()) ForEachReference(item, f);
  }
}

const json::Value* Path(const json::Value& v, std::initializer_list<std::string_view> keys) {
  const json::Value* cur = &v;
  for (std::string_view k : keys) {
    if (cur->is_array()) {
      if (cur->size() == 0) return nullptr;
      cur = &cur->items()[0];
    }
    cur = cur->Find(k);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

// Generates 200 patients and checks every resource with the full validator
// (structure, bindings, UK Core, FHIRPath invariants), every reference, and
// the NHS numbers.
TEST(Synth, EveryResourceIsValidAndEveryReferenceResolves) {
  Options options;
  options.patients = 200;
  options.seed = 42;
  MemorySink sink;
  auto counts = Generate(options, sink);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();

  std::vector<json::Document> docs;
  std::set<std::string> ids;
  fhir::ValidateOptions validate = fhirpath::FullValidation();
  size_t invalid = 0;
  for (size_t t = 0; t < kResourceTypeCount; ++t) {
    ResourceType type = static_cast<ResourceType>(t);
    const auto& lines = sink.lines(type);
    EXPECT_EQ(lines.size(), counts->by_type[t]) << ResourceTypeName(type);
    EXPECT_GT(lines.size(), 0u) << "no " << ResourceTypeName(type);
    for (const std::string& line : lines) {
      auto doc = json::Document::Parse(line);
      ASSERT_TRUE(doc.ok()) << doc.status().ToString() << "\n" << line;
      fhir::OperationOutcome outcome = fhir::Validate(doc->root(), validate);
      for (const fhir::Issue& issue : outcome.issues) {
        if (issue.severity == fhir::Severity::kError || issue.severity == fhir::Severity::kFatal) {
          if (++invalid <= 20) ADD_FAILURE() << issue.location << ": " << issue.diagnostics << "\n" << line;
        }
      }
      std::string key(ResourceTypeName(type));
      key += "/";
      key += doc->root().Find("id")->as_string();
      EXPECT_TRUE(ids.insert(key).second) << "duplicate id " << key;
      docs.push_back(std::move(doc).value());
    }
  }
  EXPECT_EQ(invalid, 0u);

  size_t references = 0;
  for (const json::Document& doc : docs) {
    ForEachReference(doc.root(), [&](std::string_view ref) {
      ++references;
      EXPECT_TRUE(ids.count(std::string(ref))) << "unresolved " << ref;
    });
  }
  EXPECT_GT(references, counts->total());

  std::set<std::string> nhs_numbers;
  for (const std::string& line : sink.lines(ResourceType::kPatient)) {
    auto doc = json::Document::Parse(line);
    ASSERT_TRUE(doc.ok());
    const json::Value* system = Path(doc->root(), {"identifier", "system"});
    const json::Value* value = Path(doc->root(), {"identifier", "value"});
    ASSERT_TRUE(system && value);
    EXPECT_EQ(system->as_string(), fhir::uk::kNhsNumberSystem);
    std::string number(value->as_string());
    EXPECT_TRUE(fhir::uk::IsValidNhsNumber(number)) << number;
    EXPECT_EQ(number.substr(0, 3), "999") << number;
    EXPECT_TRUE(nhs_numbers.insert(number).second) << "duplicate " << number;
  }
  EXPECT_EQ(nhs_numbers.size(), 200u);

  // The vital signs NEWS2 needs are all there.
  std::set<std::string> codes;
  for (const std::string& line : sink.lines(ResourceType::kObservation)) {
    auto doc = json::Document::Parse(line);
    ASSERT_TRUE(doc.ok());
    codes.insert(std::string(Path(doc->root(), {"code", "coding", "code"})->as_string()));
  }
  for (std::string_view code : {"9279-1", "2708-6", "3150-0", "85354-9", "8867-4", "8310-5", "1104441000000107"}) {
    EXPECT_TRUE(codes.count(std::string(code))) << code;
  }
}

TEST(Synth, NhsNumbersStayUniqueAtScale) {
  // 20,000 patients without validation: NHS numbers never repeat.
  Options options;
  options.patients = 20000;
  options.seed = 7;
  class NhsSink : public Sink {
   public:
    Status Write(ResourceType type, std::string_view json) override {
      if (type != ResourceType::kPatient) return Status::Ok();
      size_t at = json.find("\"value\":\"999");
      if (at == std::string_view::npos) return InternalError("no NHS number");
      std::string number(json.substr(at + 9, 10));
      if (!fhir::uk::IsValidNhsNumber(number)) return InternalError("invalid " + number);
      if (!seen.insert(number).second) return InternalError("duplicate " + number);
      return Status::Ok();
    }
    std::set<std::string> seen;
  } sink;
  auto counts = Generate(options, sink);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(sink.seen.size(), 20000u);
}

std::map<std::string, std::string> ReadDir(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    files[entry.path().filename().string()] = ss.str();
  }
  return files;
}

TEST(Synth, SameSeedSameBytesOtherSeedDiffers) {
  std::filesystem::path base =
      std::filesystem::temp_directory_path() / ("bevan_synth_test_" + std::to_string(getpid()));
  Options options;
  options.patients = 300;
  options.seed = 20260401;
  ASSERT_TRUE(GenerateToDirectory(options, (base / "a").string()).ok());
  ASSERT_TRUE(GenerateToDirectory(options, (base / "b").string()).ok());
  options.seed = 20260402;
  ASSERT_TRUE(GenerateToDirectory(options, (base / "c").string()).ok());
  auto a = ReadDir(base / "a");
  auto b = ReadDir(base / "b");
  auto c = ReadDir(base / "c");
  EXPECT_EQ(a.size(), kResourceTypeCount);
  EXPECT_TRUE(a.count("Patient.ndjson"));
  EXPECT_TRUE(a.count("Observation.ndjson"));
  EXPECT_EQ(a, b);
  EXPECT_NE(a.at("Patient.ndjson"), c.at("Patient.ndjson"));

  // The files hold exactly what the in-memory sink gets.
  options.seed = 20260401;
  MemorySink memory;
  ASSERT_TRUE(Generate(options, memory).ok());
  std::string patients;
  for (const std::string& line : memory.lines(ResourceType::kPatient)) patients += line + "\n";
  EXPECT_EQ(patients, a.at("Patient.ndjson"));
  std::filesystem::remove_all(base);
}

// Nothing happens to a patient after their death, and only booked
// appointments (and inpatient stays still in progress) lie after "now".
TEST(Synth, TimelineIsConsistent) {
  Options options;
  options.patients = 3000;
  options.seed = 99;
  MemorySink sink;
  ASSERT_TRUE(Generate(options, sink).ok());
  std::string now;
  AppendDate(options.as_of, now);
  std::map<std::string, std::string> death;  // "Patient/id" -> date
  for (const std::string& line : sink.lines(ResourceType::kPatient)) {
    auto doc = json::Document::Parse(line);
    ASSERT_TRUE(doc.ok());
    if (const json::Value* d = doc->root().Find("deceasedDateTime")) {
      death["Patient/" + std::string(doc->root().Find("id")->as_string())] = std::string(d->as_string().substr(0, 10));
    }
  }
  EXPECT_GT(death.size(), 10u);
  struct Check {
    ResourceType type;
    std::string_view patient_key;
    std::string_view date_key;
  };
  size_t checked = 0;
  for (Check c : {Check{ResourceType::kAppointment, "", "start"}, Check{ResourceType::kEncounter, "subject", "period"},
                  Check{ResourceType::kObservation, "subject", "effectiveDateTime"},
                  Check{ResourceType::kImmunization, "patient", "occurrenceDateTime"},
                  Check{ResourceType::kMedicationRequest, "subject", "authoredOn"},
                  Check{ResourceType::kCondition, "subject", "onsetDateTime"}}) {
    for (const std::string& line : sink.lines(c.type)) {
      auto doc = json::Document::Parse(line);
      ASSERT_TRUE(doc.ok());
      const json::Value& root = doc->root();
      const json::Value* when = root.Find(c.date_key);
      if (when != nullptr && when->is_object()) when = when->Find("start");
      ASSERT_TRUE(when != nullptr) << line;
      std::string day(when->as_string().substr(0, 10));
      std::string patient;
      if (c.type == ResourceType::kAppointment) {
        patient = std::string(Path(root, {"participant", "actor", "reference"})->as_string());
        std::string_view status = root.Find("status")->as_string();
        if (status == "booked") {
          EXPECT_GE(day, now) << line;
        } else {
          EXPECT_LT(day, now) << line;
        }
      } else {
        patient = std::string(Path(root, {c.patient_key, "reference"})->as_string());
        EXPECT_LE(day, now) << line;
      }
      auto died = death.find(patient);
      if (died != death.end()) {
        EXPECT_LE(day, died->second) << line;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 50u);
}

TEST(Synth, RoughlyFivePercentOptOut) {
  Options options;
  options.patients = 4000;
  MemorySink sink;
  auto counts = Generate(options, sink);
  ASSERT_TRUE(counts.ok());
  double share = static_cast<double>(counts->by_type[static_cast<size_t>(ResourceType::kConsent)]) / 4000;
  EXPECT_GT(share, 0.035);
  EXPECT_LT(share, 0.065);
}

}  // namespace
}  // namespace bevan::synth
