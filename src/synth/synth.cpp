#include "synth/synth.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <span>
#include <vector>

#include "fhir/uk_core.h"
#include "synth/calendar.h"
#include "synth/json_writer.h"
#include "synth/rng.h"
#include "synth/tables.h"

namespace bevan::synth {

namespace {

using tables::Code;
using tables::Specialty;

constexpr std::array<std::string_view, kResourceTypeCount> kTypeNames = {
    "Organization",   "Location", "Practitioner", "PractitionerRole",  "Schedule",
    "Patient",        "Consent",  "Condition",    "MedicationRequest", "Immunization",
    "ServiceRequest", "Slot",     "Appointment",  "Encounter",         "Observation"};

// Code systems and identifier systems written by the generator.
constexpr std::string_view kGmcSystem = "https://fhir.hl7.org.uk/Id/gmc-number";
constexpr std::string_view kNmcSystem = "https://fhir.hl7.org.uk/Id/nmc-number";
constexpr std::string_view kUbrnSystem = "https://fhir.nhs.uk/Id/UBRN";
constexpr std::string_view kNhsVerificationUrl =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
constexpr std::string_view kNhsVerificationSystem =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";
constexpr std::string_view kRttPeriodUrl = "https://bevan.example/fhir/StructureDefinition/rtt-period";
constexpr std::string_view kObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category";
constexpr std::string_view kConditionClinical = "http://terminology.hl7.org/CodeSystem/condition-clinical";
constexpr std::string_view kConditionVerification = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
constexpr std::string_view kConditionCategory = "http://terminology.hl7.org/CodeSystem/condition-category";
constexpr std::string_view kCourseOfTherapy =
    "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy";
constexpr std::string_view kActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
constexpr std::string_view kActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
constexpr std::string_view kRoleCode = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
constexpr std::string_view kAppointmentType = "http://terminology.hl7.org/CodeSystem/v2-0276";
constexpr std::string_view kCancellationReason =
    "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";
constexpr std::string_view kConsentScope = "http://terminology.hl7.org/CodeSystem/consentscope";
constexpr std::string_view kOrganizationType = "http://terminology.hl7.org/CodeSystem/organization-type";
constexpr std::string_view kAdmitSource = "http://terminology.hl7.org/CodeSystem/admit-source";
constexpr std::string_view kDischargeDisposition = "http://terminology.hl7.org/CodeSystem/discharge-disposition";

constexpr int kDaysPerYearX100 = 36525;
constexpr int kNdopLaunch = 17676;  // 2018-05-25, the national data opt-out began

// A resource id: UUID-shaped (version 4 layout), unique per (seed, type, n).
struct Id {
  char text[36] = {};
  std::string_view view() const { return {text, sizeof text}; }
};

struct Staff {
  Id practitioner;
  Id role;
  Id schedule;
};

struct Practice {
  Id org;
  int town = 0;
  std::array<Staff, 3> gps;
  Staff nurse;
};

struct Site {
  Id location;
};

struct Clinic {
  Specialty specialty;
  int site = 0;
  std::array<Staff, 2> consultants;
};

enum class Sex : uint8_t { kMale, kFemale };

struct PatientCtx {
  Id id;
  Sex sex = Sex::kMale;
  int32_t birth = 0;
  int age = 0;  // at `end`
  bool deceased = false;
  int32_t end = 0;     // last day with events: death or as_of
  int32_t window = 0;  // first day of the recent history
  const Practice* practice = nullptr;
  const Staff* gp = nullptr;
  std::array<std::optional<Id>, tables::kChronic.size()> chronic;  // active problems
  std::array<bool, tables::kChronic.size()> chronic_active{};
};

struct VisitPlan {
  int64_t start = 0;  // local minutes
  int minutes = 10;
  std::string_view status;  // booked | fulfilled | cancelled | noshow
  const Staff* staff = nullptr;
  const Id* location = nullptr;  // outpatients: the site
  const Id* organization = nullptr;
  Specialty specialty = Specialty::kGeneralPractice;
  bool follow_up = false;
  const Id* based_on = nullptr;  // ServiceRequest
  const Id* reason = nullptr;    // Condition
};

int AgeBand(int age) { return age < 18 ? 0 : age < 40 ? 1 : age < 60 ? 2 : age < 80 ? 3 : 4; }

int32_t ToWeekday(int32_t day) {
  int wd = Weekday(day);
  if (wd == 6) return day - 1;  // Saturday -> Friday
  if (wd == 0) return day + 1;  // Sunday -> Monday
  return day;
}

class Generator {
 public:
  Generator(const Options& options, Sink& sink)
      : options_(options), sink_(sink), w_(buf_), world_(Rng::ForStream(options.seed, ~0ULL)), r_(0) {
    id_key_ = Mix64(options.seed ^ 0x1d5eedULL);
    uint64_t m = Mix64(options.seed + 7);
    nhs_multiplier_ = (m % 500000) * 2 + 1;  // odd
    if (nhs_multiplier_ % 5 == 0) nhs_multiplier_ += 2;
    nhs_offset_ = Mix64(options.seed + 11) % 1000000;
    // The region follows the trust, whatever the seed.
    region_ = &tables::kRegions[Fingerprint(options.trust_ods) % tables::kRegions.size()];
    buf_.reserve(8192);
  }

  Status Run() {
    RETURN_IF_ERROR(World());
    for (uint32_t i = 0; i < options_.patients; ++i) RETURN_IF_ERROR(OnePatient(i));
    return Status::Ok();
  }

  const Counts& counts() const { return counts_; }

 private:
  static uint64_t Fingerprint(std::string_view s) {
    uint64_t h = 1469598103934665603ULL;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    return h;
  }

  // ---- ids and emission ----

  Id NewId(ResourceType type) {
    uint64_t x = (static_cast<uint64_t>(type) << 40) | next_id_[static_cast<size_t>(type)]++;
    uint64_t hi = Mix64(id_key_ ^ x);
    uint64_t lo = Mix64(hi ^ 0x6a09e667f3bcc909ULL);
    hi = (hi & ~0xF000ULL) | 0x4000ULL;
    lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
    static constexpr char kHex[] = "0123456789abcdef";
    Id id;
    int pos = 0;
    for (int i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) id.text[pos++] = '-';
      uint64_t word = i < 16 ? hi : lo;
      int shift = 60 - 4 * (i % 16);
      id.text[pos++] = kHex[(word >> shift) & 0xF];
    }
    return id;
  }

  void Begin(ResourceType type, const Id& id) {
    buf_.clear();
    w_.Reset();
    w_.BeginObject();
    w_.Key("resourceType");
    w_.Plain(kTypeNames[static_cast<size_t>(type)]);
    w_.Key("id");
    w_.Plain(id.view());
  }

  Status End(ResourceType type) {
    w_.EndObject();
    ++counts_.by_type[static_cast<size_t>(type)];
    return sink_.Write(type, buf_);
  }

  // ---- datatype helpers ----

  void RefValue(ResourceType type, const Id& id) {
    w_.BeginObject();
    w_.Key("reference");
    std::string& out = w_.OpenRaw();
    out.append(kTypeNames[static_cast<size_t>(type)]);
    out.push_back('/');
    out.append(id.view());
    w_.CloseRaw();
    w_.EndObject();
  }
  void Ref(std::string_view key, ResourceType type, const Id& id) {
    w_.Key(key);
    RefValue(type, id);
  }
  void RefArray(std::string_view key, ResourceType type, const Id& id) {
    w_.Key(key);
    w_.BeginArray();
    RefValue(type, id);
    w_.EndArray();
  }
  void CodingValue(std::string_view system, std::string_view code, std::string_view display) {
    w_.BeginObject();
    w_.Key("system");
    w_.Plain(system);
    w_.Key("code");
    w_.Plain(code);
    if (!display.empty()) {
      w_.Key("display");
      w_.String(display);
    }
    w_.EndObject();
  }
  void ConceptValue(std::string_view system, std::string_view code, std::string_view display,
                    std::string_view text = {}) {
    w_.BeginObject();
    w_.Key("coding");
    w_.BeginArray();
    CodingValue(system, code, display);
    w_.EndArray();
    if (!text.empty()) {
      w_.Key("text");
      w_.String(text);
    }
    w_.EndObject();
  }
  void Concept(std::string_view key, std::string_view system, std::string_view code, std::string_view display,
               std::string_view text = {}) {
    w_.Key(key);
    ConceptValue(system, code, display, text);
  }
  void ConceptArray(std::string_view key, std::string_view system, std::string_view code, std::string_view display) {
    w_.Key(key);
    w_.BeginArray();
    ConceptValue(system, code, display);
    w_.EndArray();
  }
  void Snomed(std::string_view key, const Code& code) { Concept(key, tables::kSnomed, code.code, code.display); }
  void SpecialtyArray(std::string_view key, Specialty s) {
    const Code& c = tables::kSpecialties[static_cast<size_t>(s)];
    ConceptArray(key, tables::kSnomed, c.code, c.display);
  }
  void Date(std::string_view key, int32_t day) {
    w_.Key(key);
    AppendDate(day, w_.OpenRaw());
    w_.CloseRaw();
  }
  void DateTime(std::string_view key, int64_t minutes) {
    w_.Key(key);
    AppendLocalDateTime(minutes, w_.OpenRaw());
    w_.CloseRaw();
  }
  void Period(std::string_view key, int64_t start, std::optional<int64_t> end) {
    w_.Key(key);
    w_.BeginObject();
    DateTime("start", start);
    if (end) DateTime("end", *end);
    w_.EndObject();
  }
  void DatePeriod(std::string_view key, int32_t start, std::optional<int32_t> end) {
    w_.Key(key);
    w_.BeginObject();
    Date("start", start);
    if (end) Date("end", *end);
    w_.EndObject();
  }
  // A UCUM quantity with `decimals` places.
  void Quantity(std::string_view key, int64_t scaled, int decimals, std::string_view unit, std::string_view code) {
    w_.Key(key);
    w_.BeginObject();
    w_.Key("value");
    w_.Decimal(scaled, decimals);
    w_.Key("unit");
    w_.Plain(unit);
    w_.Key("system");
    w_.Plain(tables::kUcum);
    w_.Key("code");
    w_.Plain(code);
    w_.EndObject();
  }
  void Identifier(std::string_view system, std::string_view value) {
    w_.BeginObject();
    w_.Key("system");
    w_.Plain(system);
    w_.Key("value");
    w_.Plain(value);
    w_.EndObject();
  }
  void HumanName(std::string_view family, std::string_view given, std::string_view middle, std::string_view prefix) {
    w_.Key("name");
    w_.BeginArray();
    w_.BeginObject();
    w_.Key("use");
    w_.Plain("official");
    w_.Key("family");
    w_.String(family);
    w_.Key("given");
    w_.BeginArray();
    w_.String(given);
    if (!middle.empty()) w_.String(middle);
    w_.EndArray();
    if (!prefix.empty()) {
      w_.Key("prefix");
      w_.BeginArray();
      w_.Plain(prefix);
      w_.EndArray();
    }
    w_.EndObject();
    w_.EndArray();
  }
  // Writes a random address object in `town` (line, city, district, postcode).
  void AddressValue(Rng& rng, int town_index, std::string_view use) {
    const tables::Town& town = region_->towns[static_cast<size_t>(town_index)];
    w_.BeginObject();
    w_.Key("use");
    w_.Plain(use);
    w_.Key("type");
    w_.Plain("both");
    w_.Key("line");
    w_.BeginArray();
    if (use == "home" && rng.PerMille(120)) {
      std::string& out = w_.OpenRaw();
      out.append("Flat ");
      AppendInt(rng.Range(1, 24), out);
      w_.CloseRaw();
    }
    std::string& line = w_.OpenRaw();
    AppendInt(rng.Range(1, 180), line);
    line.push_back(' ');
    line.append(rng.Pick(tables::kStreet));  // may hold an apostrophe: no JSON escaping needed
    line.push_back(' ');
    line.append(rng.Pick(tables::kStreetSuffix));
    w_.CloseRaw();
    w_.EndArray();
    w_.Key("city");
    w_.Plain(town.name);
    w_.Key("district");
    w_.Plain(town.county);
    w_.Key("postalCode");
    std::string& out = w_.OpenRaw();
    out.append(town.area);
    AppendInt(rng.Range(town.district_lo, town.district_hi), out);
    out.push_back(' ');
    out.push_back(static_cast<char>('0' + rng.Below(10)));
    out.push_back(tables::kInwardLetters[rng.Below(static_cast<uint32_t>(tables::kInwardLetters.size()))]);
    out.push_back(tables::kInwardLetters[rng.Below(static_cast<uint32_t>(tables::kInwardLetters.size()))]);
    w_.CloseRaw();
    w_.Key("country");
    w_.Plain("GB");
    w_.EndObject();
  }
  void Address(Rng& rng, int town_index, std::string_view use) {
    w_.Key("address");
    w_.BeginArray();
    AddressValue(rng, town_index, use);
    w_.EndArray();
  }
  void Phone(Rng& rng, std::string_view prefix, std::string_view use) {
    w_.Key("telecom");
    w_.BeginArray();
    w_.BeginObject();
    w_.Key("system");
    w_.Plain("phone");
    w_.Key("value");
    std::string& out = w_.OpenRaw();
    out.append(prefix);
    AppendDigits(rng.Below(1000), 3, out);
    w_.CloseRaw();
    w_.Key("use");
    w_.Plain(use);
    w_.EndObject();
    w_.EndArray();
  }
  static void AppendInt(int64_t v, std::string& out) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
  static void AppendDigits(uint64_t v, int width, std::string& out) {
    char buf[24];
    for (int i = width - 1; i >= 0; --i) {
      buf[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    out.append(buf, static_cast<size_t>(width));
  }

  int PickTown(Rng& rng) {
    std::array<int, 4> weights;
    for (size_t i = 0; i < weights.size(); ++i) weights[i] = region_->towns[i].weight;
    return static_cast<int>(rng.Weighted(weights));
  }

  // ---- shared resources: trust, sites, practices, staff, clinics ----

  Status World() {
    Rng& rng = world_;
    trust_ = NewId(ResourceType::kOrganization);
    std::string trust_name(region_->towns[0].name);
    trust_name += " Teaching Hospitals NHS Foundation Trust";
    Begin(ResourceType::kOrganization, trust_);
    w_.Key("identifier");
    w_.BeginArray();
    Identifier(fhir::uk::kOdsOrganizationSystem, options_.trust_ods);
    w_.EndArray();
    w_.Key("active");
    w_.Bool(true);
    ConceptArray("type", kOrganizationType, "prov", "Healthcare Provider");
    w_.Key("name");
    w_.String(trust_name);
    Phone(rng, region_->phone_prefix, "work");
    Address(rng, 0, "work");
    RETURN_IF_ERROR(End(ResourceType::kOrganization));

    static constexpr std::array<std::string_view, 3> kSiteNames = {" General Infirmary", " District General Hospital",
                                                                   " Community Hospital"};
    for (size_t s = 0; s < kSiteNames.size(); ++s) {
      Site site{NewId(ResourceType::kLocation)};
      Begin(ResourceType::kLocation, site.location);
      std::string code = options_.trust_ods;
      AppendDigits(s + 1, 2, code);
      w_.Key("identifier");
      w_.BeginArray();
      Identifier(fhir::uk::kOdsSiteSystem, code);
      w_.EndArray();
      w_.Key("status");
      w_.Plain("active");
      w_.Key("name");
      std::string name(region_->towns[s].name);
      name += kSiteNames[s];
      w_.String(name);
      w_.Key("mode");
      w_.Plain("instance");
      ConceptArray("type", kRoleCode, "HOSP", "Hospital");
      Phone(rng, region_->phone_prefix, "work");
      w_.Key("address");
      AddressValue(rng, static_cast<int>(s), "work");
      Ref("managingOrganization", ResourceType::kOrganization, trust_);
      RETURN_IF_ERROR(End(ResourceType::kLocation));
      sites_.push_back(site);
    }

    uint32_t practice_count = std::clamp<uint32_t>((options_.patients + 1499) / 1500, 3, 80);
    practices_.reserve(practice_count);
    for (uint32_t k = 0; k < practice_count; ++k) {
      Practice p;
      p.org = NewId(ResourceType::kOrganization);
      p.town = PickTown(rng);
      std::string ods(1, region_->practice_letter);
      AppendDigits(80001 + k * 113 + rng.Below(100), 5, ods);
      std::string name(rng.Pick(tables::kStreet));
      name.push_back(' ');
      name.append(rng.Pick(tables::kPracticeStem));
      Begin(ResourceType::kOrganization, p.org);
      w_.Key("identifier");
      w_.BeginArray();
      Identifier(fhir::uk::kOdsOrganizationSystem, ods);
      w_.EndArray();
      w_.Key("active");
      w_.Bool(true);
      ConceptArray("type", kOrganizationType, "prov", "Healthcare Provider");
      w_.Key("name");
      w_.String(name);
      Phone(rng, region_->phone_prefix, "work");
      Address(rng, p.town, "work");
      RETURN_IF_ERROR(End(ResourceType::kOrganization));
      for (Staff& gp : p.gps) {
        RETURN_IF_ERROR(StaffMember(rng, gp, /*doctor=*/true, p.org, nullptr, Specialty::kGeneralPractice,
                                    {"62247001", "General practitioner"}, true));
      }
      RETURN_IF_ERROR(StaffMember(rng, p.nurse, false, p.org, nullptr, Specialty::kGeneralPractice,
                                  {"106292003", "Professional nurse"}, false));
      practices_.push_back(p);
    }

    for (size_t c = 0; c < tables::kOutpatientSpecialties.size(); ++c) {
      Clinic clinic;
      clinic.specialty = tables::kOutpatientSpecialties[c];
      clinic.site = static_cast<int>(c % 2);
      for (Staff& consultant : clinic.consultants) {
        RETURN_IF_ERROR(StaffMember(rng, consultant, true, trust_, &sites_[static_cast<size_t>(clinic.site)].location,
                                    clinic.specialty, {"158965000", "Medical practitioner"}, true));
      }
      clinics_.push_back(clinic);
    }
    RETURN_IF_ERROR(StaffMember(rng, ed_consultant_, true, trust_, &sites_[0].location, Specialty::kEmergency,
                                {"158965000", "Medical practitioner"}, false));
    for (Staff& nurse : ed_nurses_) {
      RETURN_IF_ERROR(StaffMember(rng, nurse, false, trust_, &sites_[0].location, Specialty::kEmergency,
                                  {"106292003", "Professional nurse"}, false));
    }
    return Status::Ok();
  }

  // Writes a Practitioner, their PractitionerRole and (with_schedule) the
  // Schedule of their clinics.
  Status StaffMember(Rng& rng, Staff& staff, bool doctor, const Id& org, const Id* location, Specialty specialty,
                     Code role, bool with_schedule) {
    staff.practitioner = NewId(ResourceType::kPractitioner);
    staff.role = NewId(ResourceType::kPractitionerRole);
    bool female = rng.PerMille(doctor ? 520 : 880);
    Begin(ResourceType::kPractitioner, staff.practitioner);
    w_.Key("identifier");
    w_.BeginArray();
    std::string number;
    if (doctor) {
      AppendDigits(2000000 + staff_count_ * 997 + rng.Below(997), 7, number);
      Identifier(kGmcSystem, number);
    } else {
      AppendDigits(rng.Range(0, 24), 2, number);
      number.push_back(static_cast<char>('A' + rng.Below(26)));
      AppendDigits((staff_count_ * 37 + rng.Below(37)) % 10000, 4, number);
      number.push_back(static_cast<char>('A' + rng.Below(26)));
      Identifier(kNmcSystem, number);
    }
    ++staff_count_;
    w_.EndArray();
    w_.Key("active");
    w_.Bool(true);
    HumanName(rng.Pick(tables::kFamily), female ? rng.Pick(tables::kFemaleGiven) : rng.Pick(tables::kMaleGiven), {},
              doctor ? "Dr" : (female ? "Ms" : "Mr"));
    w_.Key("gender");
    w_.Plain(female ? "female" : "male");
    RETURN_IF_ERROR(End(ResourceType::kPractitioner));

    Begin(ResourceType::kPractitionerRole, staff.role);
    w_.Key("active");
    w_.Bool(true);
    Ref("practitioner", ResourceType::kPractitioner, staff.practitioner);
    Ref("organization", ResourceType::kOrganization, org);
    ConceptArray("code", tables::kSnomed, role.code, role.display);
    SpecialtyArray("specialty", specialty);
    if (location != nullptr) RefArray("location", ResourceType::kLocation, *location);
    RETURN_IF_ERROR(End(ResourceType::kPractitionerRole));

    if (with_schedule) {
      staff.schedule = NewId(ResourceType::kSchedule);
      Begin(ResourceType::kSchedule, staff.schedule);
      w_.Key("active");
      w_.Bool(true);
      SpecialtyArray("specialty", specialty);
      w_.Key("actor");
      w_.BeginArray();
      RefValue(ResourceType::kPractitionerRole, staff.role);
      if (location != nullptr) RefValue(ResourceType::kLocation, *location);
      w_.EndArray();
      DatePeriod("planningHorizon", options_.as_of - 730, options_.as_of + 90);
      w_.Key("comment");
      w_.Plain(specialty == Specialty::kGeneralPractice ? "GP surgery sessions" : "Consultant outpatient clinic");
      RETURN_IF_ERROR(End(ResourceType::kSchedule));
    }
    return Status::Ok();
  }

  // ---- patients ----

  // The next NHS number: 999 followed by a permutation of six digits (an
  // affine map mod 10^6, so numbers never repeat), skipping prefixes whose
  // Modulus 11 check digit would be 10.
  Result<std::string> NextNhsNumber() {
    while (nhs_next_ < 1000000) {
      uint64_t six = (nhs_multiplier_ * nhs_next_++ + nhs_offset_) % 1000000;
      std::string number = "999";
      AppendDigits(six, 6, number);
      int check = fhir::uk::NhsCheckDigit(number);
      if (check < 0) continue;
      number.push_back(static_cast<char>('0' + check));
      return number;
    }
    return ResourceExhaustedError("the NHS number test range is used up");
  }

  Status OnePatient(uint32_t index) {
    r_ = Rng::ForStream(options_.seed, index);
    PatientCtx p;
    p.id = NewId(ResourceType::kPatient);
    // England's age structure (ONS mid-year estimates, rounded), 10 bands.
    static constexpr std::array<int, 10> kBandWeights = {55, 120, 115, 135, 130, 135, 125, 100, 65, 20};
    static constexpr std::array<int, 10> kBandLow = {0, 5, 15, 25, 35, 45, 55, 65, 75, 85};
    static constexpr std::array<int, 10> kBandWidth = {5, 10, 10, 10, 10, 10, 10, 10, 10, 15};
    size_t band = r_.Weighted(kBandWeights);
    int age = kBandLow[band] + static_cast<int>(r_.Below(static_cast<uint32_t>(kBandWidth[band])));
    p.birth = options_.as_of - static_cast<int32_t>(static_cast<int64_t>(age) * kDaysPerYearX100 / 100) -
              static_cast<int32_t>(r_.Below(365));
    int death_per_mille = age < 45 ? 1 : age < 65 ? 5 : age < 75 ? 15 : age < 85 ? 40 : 110;
    p.deceased = r_.PerMille(death_per_mille);
    p.end = options_.as_of;
    if (p.deceased) p.end = std::max(p.birth + 1, options_.as_of - static_cast<int32_t>(r_.Range(1, 700)));
    p.age = static_cast<int>((static_cast<int64_t>(p.end - p.birth) * 100) / kDaysPerYearX100);
    p.window = std::max(p.birth, options_.as_of - 730);
    p.sex = r_.PerMille(510) ? Sex::kFemale : Sex::kMale;
    std::string_view gender = p.sex == Sex::kFemale ? "female" : "male";
    int rare = static_cast<int>(r_.Below(1000));
    if (rare < 1) gender = "other";
    if (rare == 1) gender = "unknown";

    int town = PickTown(r_);
    p.practice = &practices_[r_.Below(static_cast<uint32_t>(practices_.size()))];
    for (int attempt = 0; attempt < 3 && p.practice->town != town; ++attempt) {
      p.practice = &practices_[r_.Below(static_cast<uint32_t>(practices_.size()))];
    }
    p.gp = &p.practice->gps[r_.Below(3)];

    ASSIGN_OR_RETURN(std::string nhs_number, NextNhsNumber());
    Begin(ResourceType::kPatient, p.id);
    w_.Key("identifier");
    w_.BeginArray();
    w_.BeginObject();
    w_.Key("extension");
    w_.BeginArray();
    w_.BeginObject();
    w_.Key("url");
    w_.Plain(kNhsVerificationUrl);
    Concept("valueCodeableConcept", kNhsVerificationSystem, "01", "Number present and verified");
    w_.EndObject();
    w_.EndArray();
    w_.Key("system");
    w_.Plain(fhir::uk::kNhsNumberSystem);
    w_.Key("value");
    w_.Plain(nhs_number);
    w_.EndObject();
    w_.EndArray();
    w_.Key("active");
    w_.Bool(true);
    bool female_name = p.sex == Sex::kFemale;
    std::string_view given = female_name ? r_.Pick(tables::kFemaleGiven) : r_.Pick(tables::kMaleGiven);
    std::string_view middle;
    if (r_.PerMille(400)) {
      middle = female_name ? r_.Pick(tables::kFemaleGiven) : r_.Pick(tables::kMaleGiven);
      if (middle == given) middle = {};
    }
    std::string_view prefix;
    if (p.age >= 18) {
      if (r_.PerMille(10)) {
        prefix = "Dr";
      } else if (!female_name) {
        prefix = "Mr";
      } else {
        static constexpr std::array<std::string_view, 3> kTitles = {"Mrs", "Ms", "Miss"};
        static constexpr std::array<int, 3> kTitleWeights = {45, 30, 25};
        prefix = kTitles[r_.Weighted(kTitleWeights)];
      }
    }
    HumanName(r_.Pick(tables::kFamily), given, middle, prefix);
    if (p.age >= 12 && r_.PerMille(880)) {
      w_.Key("telecom");
      w_.BeginArray();
      w_.BeginObject();
      w_.Key("system");
      w_.Plain("phone");
      w_.Key("value");
      std::string& out = w_.OpenRaw();
      out.append("07700 900");
      AppendDigits(r_.Below(1000), 3, out);
      w_.CloseRaw();
      w_.Key("use");
      w_.Plain("mobile");
      w_.EndObject();
      w_.EndArray();
    }
    w_.Key("gender");
    w_.Plain(gender);
    Date("birthDate", p.birth);
    if (p.deceased) DateTime("deceasedDateTime", static_cast<int64_t>(p.end) * 1440 + r_.Range(0, 1439));
    Address(r_, town, "home");
    w_.Key("generalPractitioner");
    w_.BeginArray();
    RefValue(ResourceType::kOrganization, p.practice->org);
    RefValue(ResourceType::kPractitioner, p.gp->practitioner);
    w_.EndArray();
    RETURN_IF_ERROR(End(ResourceType::kPatient));

    if (r_.PerMille(50)) RETURN_IF_ERROR(OptOut(p));
    RETURN_IF_ERROR(Conditions(p));
    RETURN_IF_ERROR(GpVisits(p));
    RETURN_IF_ERROR(Referrals(p));
    RETURN_IF_ERROR(Emergency(p));
    RETURN_IF_ERROR(Immunisations(p));
    return Status::Ok();
  }

  // The national data opt-out: a Consent that denies use of the patient's
  // confidential information for research and planning.
  Status OptOut(const PatientCtx& p) {
    int32_t from = std::max(kNdopLaunch, p.birth);
    if (from >= p.end) return Status::Ok();
    int32_t day = from + static_cast<int32_t>(r_.Below(static_cast<uint32_t>(p.end - from)));
    Begin(ResourceType::kConsent, NewId(ResourceType::kConsent));
    w_.Key("status");
    w_.Plain("active");
    Concept("scope", kConsentScope, "patient-privacy", "Privacy Consent");
    ConceptArray("category", tables::kLoinc, "59284-0", "Patient Consent");
    Ref("patient", ResourceType::kPatient, p.id);
    DateTime("dateTime", static_cast<int64_t>(day) * 1440 + r_.Range(420, 1320));
    RefArray("performer", ResourceType::kPatient, p.id);
    w_.Key("policy");
    w_.BeginArray();
    w_.BeginObject();
    w_.Key("uri");
    w_.Plain("https://digital.nhs.uk/services/national-data-opt-out");
    w_.EndObject();
    w_.EndArray();
    Concept("policyRule", kActCode, "OPTOUT", "opt-out", "NHS England national data opt-out");
    w_.Key("provision");
    w_.BeginObject();
    w_.Key("type");
    w_.Plain("deny");
    DatePeriod("period", day, std::nullopt);
    w_.Key("purpose");
    w_.BeginArray();
    CodingValue(kActReason, "HRESCH", "healthcare research");
    CodingValue(kActReason, "HOPERAT", "healthcare operations");
    w_.EndArray();
    w_.EndObject();
    return End(ResourceType::kConsent);
  }

  // A long-term problem (problem-list-item), or with `encounter` the
  // diagnosis made at that encounter (encounter-diagnosis).
  Status WriteCondition(const PatientCtx& p, const Id& id, const Code& code, std::string_view clinical, int32_t onset,
                        std::optional<int32_t> abatement, int32_t recorded, const Id* encounter) {
    Begin(ResourceType::kCondition, id);
    Concept("clinicalStatus", kConditionClinical, clinical, {});
    Concept("verificationStatus", kConditionVerification, "confirmed", {});
    if (encounter == nullptr) {
      ConceptArray("category", kConditionCategory, "problem-list-item", "Problem List Item");
    } else {
      ConceptArray("category", kConditionCategory, "encounter-diagnosis", "Encounter Diagnosis");
    }
    Snomed("code", code);
    Ref("subject", ResourceType::kPatient, p.id);
    if (encounter != nullptr) Ref("encounter", ResourceType::kEncounter, *encounter);
    Date("onsetDateTime", onset);
    if (abatement) Date("abatementDateTime", *abatement);
    Date("recordedDate", recorded);
    Ref("recorder", ResourceType::kPractitioner, p.gp->practitioner);
    return End(ResourceType::kCondition);
  }

  Status Conditions(PatientCtx& p) {
    int band = AgeBand(p.age);
    for (size_t i = 0; i < tables::kChronic.size(); ++i) {
      const tables::ChronicCondition& c = tables::kChronic[i];
      if (!r_.PerMille(c.per_mille[static_cast<size_t>(band)])) continue;
      int32_t earliest = p.birth + c.min_onset_age * 365;
      if (earliest >= p.end) continue;
      int32_t onset = earliest + static_cast<int32_t>(r_.Below(static_cast<uint32_t>(p.end - earliest)));
      Id id = NewId(ResourceType::kCondition);
      std::string_view clinical = "active";
      std::optional<int32_t> abatement;
      if (i == 4 && r_.PerMille(300)) clinical = "remission";   // depression
      if (i == 2 && r_.PerMille(100) && onset + 400 < p.end) {  // asthma
        clinical = "resolved";
        abatement = onset + 365 + static_cast<int32_t>(r_.Below(static_cast<uint32_t>(p.end - onset - 365)));
      }
      int32_t recorded = std::min(p.end, onset + static_cast<int32_t>(r_.Below(30)));
      RETURN_IF_ERROR(WriteCondition(p, id, c.code, clinical, onset, abatement, recorded, nullptr));
      p.chronic[i] = id;
      p.chronic_active[i] = clinical == "active";
      if (!p.chronic_active[i]) continue;
      for (const tables::Medicine& m : c.medicines) {
        if (m.code.code.empty()) continue;
        RETURN_IF_ERROR(RepeatMedicine(p, m, id, onset));
      }
    }
    return Status::Ok();
  }

  void MedicationCommon(const PatientCtx& p, const tables::Medicine& m, std::string_view status,
                        std::string_view intent, std::string_view course, int64_t authored, const Id* reason,
                        const Id* encounter = nullptr) {
    w_.Key("status");
    w_.Plain(status);
    w_.Key("intent");
    w_.Plain(intent);
    w_.Key("medicationCodeableConcept");
    ConceptValue(tables::kSnomed, m.code.code, m.code.display);
    Ref("subject", ResourceType::kPatient, p.id);
    if (encounter != nullptr) Ref("encounter", ResourceType::kEncounter, *encounter);
    DateTime("authoredOn", authored);
    Ref("requester", ResourceType::kPractitionerRole, p.gp->role);
    if (reason != nullptr) RefArray("reasonReference", ResourceType::kCondition, *reason);
    Concept("courseOfTherapyType", kCourseOfTherapy, course,
            course == "continuous" ? "Continuous long term therapy" : "Short course (acute) therapy");
    w_.Key("dosageInstruction");
    w_.BeginArray();
    w_.BeginObject();
    w_.Key("text");
    w_.String(m.dosage);
    w_.EndObject();
    w_.EndArray();
  }

  void DispenseRequest(const tables::Medicine& m, std::optional<int32_t> validity_start, int repeats) {
    w_.Key("dispenseRequest");
    w_.BeginObject();
    if (validity_start) DatePeriod("validityPeriod", *validity_start, *validity_start + 365);
    if (repeats > 0) {
      w_.Key("numberOfRepeatsAllowed");
      w_.Int(repeats);
    }
    w_.Key("quantity");
    w_.BeginObject();
    w_.Key("value");
    w_.Int(m.quantity);
    w_.Key("unit");
    w_.Plain(m.unit);
    w_.EndObject();
    Quantity("expectedSupplyDuration", m.supply_days, 0, "days", "d");
    w_.EndObject();
  }

  // A repeat authorisation (intent plan, continuous) and its latest issues
  // (intent order, based on the authorisation), as GP systems record them.
  Status RepeatMedicine(const PatientCtx& p, const tables::Medicine& m, const Id& reason, int32_t onset) {
    int32_t start = std::max(onset, p.end - r_.Range(30, 700));
    if (start >= p.end) return Status::Ok();
    Id plan = NewId(ResourceType::kMedicationRequest);
    int repeats = r_.PerMille(500) ? 6 : 11;
    Begin(ResourceType::kMedicationRequest, plan);
    MedicationCommon(p, m, p.deceased ? "stopped" : "active", "plan", "continuous",
                     static_cast<int64_t>(start) * 1440 + r_.Range(480, 1080), &reason);
    DispenseRequest(m, start, repeats);
    RETURN_IF_ERROR(End(ResourceType::kMedicationRequest));
    int issues = std::min(3, (p.end - start) / m.supply_days);
    for (int k = issues; k >= 1; --k) {
      int32_t day = std::max(start, p.end - k * m.supply_days + static_cast<int32_t>(r_.Below(5)));
      Begin(ResourceType::kMedicationRequest, NewId(ResourceType::kMedicationRequest));
      w_.Key("basedOn");
      w_.BeginArray();
      RefValue(ResourceType::kMedicationRequest, plan);
      w_.EndArray();
      MedicationCommon(p, m, "completed", "order", "continuous", static_cast<int64_t>(day) * 1440 + r_.Range(480, 1080),
                       &reason);
      DispenseRequest(m, std::nullopt, 0);
      RETURN_IF_ERROR(End(ResourceType::kMedicationRequest));
    }
    return Status::Ok();
  }

  // ---- appointments ----

  int32_t PastWeekday(const PatientCtx& p) {
    if (p.end - 1 <= p.window) return -1;
    int32_t day = ToWeekday(p.window + static_cast<int32_t>(r_.Below(static_cast<uint32_t>(p.end - p.window))));
    return day < p.end && day >= p.window ? day : -1;
  }

  // Slot, Appointment and, when fulfilled, the Encounter. Returns the
  // encounter id through *encounter when one was written.
  Status Visit(const PatientCtx& p, const VisitPlan& v, std::optional<Id>* encounter) {
    Id slot = NewId(ResourceType::kSlot);
    Id appointment = NewId(ResourceType::kAppointment);
    bool cancelled = v.status == "cancelled";
    std::string_view appointment_type = v.follow_up ? "FOLLOWUP" : "ROUTINE";
    auto write_slot = [&](const Id& id, int64_t start, std::string_view status) {
      Begin(ResourceType::kSlot, id);
      SpecialtyArray("specialty", v.specialty);
      Concept("appointmentType", kAppointmentType, appointment_type, {});
      Ref("schedule", ResourceType::kSchedule, v.staff->schedule);
      w_.Key("status");
      w_.Plain(status);
      DateTime("start", start);
      DateTime("end", start + v.minutes);
      return End(ResourceType::kSlot);
    };
    RETURN_IF_ERROR(write_slot(slot, v.start, cancelled ? "free" : "busy"));
    if (v.status == "booked" && r_.PerMille(400)) {
      RETURN_IF_ERROR(write_slot(NewId(ResourceType::kSlot), v.start + v.minutes, "free"));
    }

    Begin(ResourceType::kAppointment, appointment);
    w_.Key("status");
    w_.Plain(v.status);
    if (cancelled) {
      bool by_patient = r_.PerMille(600);
      Concept("cancelationReason", kCancellationReason, by_patient ? "pat" : "prov",
              by_patient ? "Patient" : "Provider");
    }
    SpecialtyArray("specialty", v.specialty);
    Concept("appointmentType", kAppointmentType, appointment_type, {});
    if (v.reason != nullptr) RefArray("reasonReference", ResourceType::kCondition, *v.reason);
    DateTime("start", v.start);
    DateTime("end", v.start + v.minutes);
    w_.Key("minutesDuration");
    w_.Int(v.minutes);
    RefArray("slot", ResourceType::kSlot, slot);
    int64_t created = v.start -
                      1440 * static_cast<int64_t>(r_.Range(1, v.specialty == Specialty::kGeneralPractice ? 14 : 42)) -
                      r_.Range(0, 300);
    DateTime("created", created);
    if (v.based_on != nullptr) RefArray("basedOn", ResourceType::kServiceRequest, *v.based_on);
    w_.Key("participant");
    w_.BeginArray();
    auto participant = [&](ResourceType type, const Id& id, std::string_view status) {
      w_.BeginObject();
      Ref("actor", type, id);
      w_.Key("required");
      w_.Plain("required");
      w_.Key("status");
      w_.Plain(status);
      w_.EndObject();
    };
    participant(ResourceType::kPatient, p.id, cancelled ? "declined" : "accepted");
    participant(ResourceType::kPractitionerRole, v.staff->role, "accepted");
    if (v.location != nullptr) participant(ResourceType::kLocation, *v.location, "accepted");
    w_.EndArray();
    RETURN_IF_ERROR(End(ResourceType::kAppointment));

    if (v.status != "fulfilled") return Status::Ok();
    Id enc = NewId(ResourceType::kEncounter);
    Begin(ResourceType::kEncounter, enc);
    w_.Key("status");
    w_.Plain("finished");
    w_.Key("class");
    CodingValue(kActCode, "AMB", "ambulatory");
    ConceptArray("type", tables::kSnomed, "11429006", "Consultation");
    Snomed("serviceType", tables::kSpecialties[static_cast<size_t>(v.specialty)]);
    Ref("subject", ResourceType::kPatient, p.id);
    if (v.based_on != nullptr) RefArray("basedOn", ResourceType::kServiceRequest, *v.based_on);
    w_.Key("participant");
    w_.BeginArray();
    w_.BeginObject();
    Ref("individual", ResourceType::kPractitioner, v.staff->practitioner);
    w_.EndObject();
    w_.EndArray();
    RefArray("appointment", ResourceType::kAppointment, appointment);
    Period("period", v.start, v.start + v.minutes + r_.Range(0, 10));
    if (v.reason != nullptr) RefArray("reasonReference", ResourceType::kCondition, *v.reason);
    if (v.location != nullptr) {
      w_.Key("location");
      w_.BeginArray();
      w_.BeginObject();
      Ref("location", ResourceType::kLocation, *v.location);
      w_.Key("status");
      w_.Plain("completed");
      w_.EndObject();
      w_.EndArray();
    }
    Ref("serviceProvider", ResourceType::kOrganization, *v.organization);
    RETURN_IF_ERROR(End(ResourceType::kEncounter));
    if (encounter != nullptr) *encounter = enc;
    return Status::Ok();
  }

  std::string_view PastStatus() {
    static constexpr std::array<std::string_view, 3> kStatuses = {"fulfilled", "noshow", "cancelled"};
    static constexpr std::array<int, 3> kWeights = {850, 60, 90};
    return kStatuses[r_.Weighted(kWeights)];
  }

  VisitPlan GpPlan(const PatientCtx& p, int32_t day) {
    VisitPlan v;
    v.start = static_cast<int64_t>(day) * 1440 + 510 + 10 * r_.Range(0, 53);
    v.minutes = 10;
    v.staff = r_.PerMille(700) ? p.gp : &p.practice->gps[r_.Below(3)];
    v.organization = &p.practice->org;
    v.specialty = Specialty::kGeneralPractice;
    return v;
  }

  Status GpVisits(const PatientCtx& p) {
    int chronic = 0;
    for (bool active : p.chronic_active) chronic += active ? 1 : 0;
    int visits = std::min(8, static_cast<int>(r_.Below(3)) + p.age / 25 + chronic);
    for (int k = 0; k < visits; ++k) {
      int32_t day = PastWeekday(p);
      if (day < 0) break;
      VisitPlan v = GpPlan(p, day);
      v.status = PastStatus();
      if (p.chronic_active[0]) v.reason = &*p.chronic[0];
      std::optional<Id> encounter;
      RETURN_IF_ERROR(Visit(p, v, &encounter));
      if (encounter && p.chronic_active[0] && r_.PerMille(600)) {
        RETURN_IF_ERROR(BloodPressure(p, *encounter, v.start + 5, p.gp->practitioner, 145, 88));
      }
    }
    // Acute problems, each seen at a GP appointment and treated.
    int acute = r_.PerMille(300) ? (r_.PerMille(300) ? 2 : 1) : 0;
    for (int k = 0; k < acute; ++k) {
      int32_t day = PastWeekday(p);
      if (day < 0) break;
      const tables::AcuteCondition& a = r_.Pick(tables::kAcute);
      Id condition = NewId(ResourceType::kCondition);
      int32_t onset = std::max(p.window, day - r_.Range(1, 5));
      std::optional<int32_t> abatement;
      if (day + 14 < p.end) abatement = day + r_.Range(5, 14);
      VisitPlan v = GpPlan(p, day);
      v.status = "fulfilled";
      v.reason = &condition;
      std::optional<Id> encounter;
      RETURN_IF_ERROR(Visit(p, v, &encounter));
      RETURN_IF_ERROR(
          WriteCondition(p, condition, a.code, abatement ? "resolved" : "active", onset, abatement, day, &*encounter));
      Begin(ResourceType::kMedicationRequest, NewId(ResourceType::kMedicationRequest));
      MedicationCommon(p, a.medicine, "completed", "order", "acute", v.start + 8, &condition, &*encounter);
      DispenseRequest(a.medicine, std::nullopt, 0);
      RETURN_IF_ERROR(End(ResourceType::kMedicationRequest));
    }
    if (!p.deceased && r_.PerMille(300)) {
      VisitPlan v = GpPlan(p, ToWeekday(options_.as_of + r_.Range(1, 28)));
      if (v.start / 1440 <= options_.as_of) v.start += 3 * 1440;
      v.status = "booked";
      RETURN_IF_ERROR(Visit(p, v, nullptr));
    }
    return Status::Ok();
  }

  // Referral to a consultant-led outpatient service with its RTT clock,
  // and the outpatient appointments that follow.
  Status Referral(const PatientCtx& p, Specialty specialty, const Id* reason) {
    int32_t first = std::max(p.window, p.end - 420);
    if (first >= p.end - 1) return Status::Ok();
    int32_t authored = ToWeekday(first + static_cast<int32_t>(r_.Below(static_cast<uint32_t>(p.end - 1 - first))));
    int32_t clock_start = std::min(p.end, authored + r_.Range(0, 5));
    static constexpr std::array<int, 3> kWaitWeights = {60, 30, 10};
    static constexpr std::array<int, 3> kWaitLow = {14, 84, 126};
    static constexpr std::array<int, 3> kWaitHigh = {84, 126, 300};
    size_t w = r_.Weighted(kWaitWeights);
    int32_t first_opa = ToWeekday(clock_start + r_.Range(kWaitLow[w], kWaitHigh[w]));
    const Clinic* clinic = nullptr;
    for (const Clinic& c : clinics_) {
      if (c.specialty == specialty) clinic = &c;
    }
    const Staff& consultant = clinic->consultants[r_.Below(2)];
    Id request = NewId(ResourceType::kServiceRequest);

    std::array<VisitPlan, 2> visits;
    int visit_count = 0;
    std::optional<int32_t> clock_stop;
    auto plan = [&](int32_t day, bool follow_up) {
      VisitPlan& v = visits[static_cast<size_t>(visit_count++)];
      v.start = static_cast<int64_t>(day) * 1440 + 540 + 20 * r_.Range(0, 20);
      v.minutes = follow_up ? 15 : 30;
      v.staff = &consultant;
      v.location = &sites_[static_cast<size_t>(clinic->site)].location;
      v.organization = &trust_;
      v.specialty = specialty;
      v.follow_up = follow_up;
      v.based_on = &request;
      v.reason = reason;
      return &v;
    };
    if (first_opa < p.end) {
      VisitPlan* v = plan(first_opa, false);
      v->status = PastStatus();
      if (v->status == "fulfilled") {
        if (r_.PerMille(700)) {
          clock_stop = first_opa;
        } else {
          int32_t follow = ToWeekday(first_opa + r_.Range(28, 70));
          VisitPlan* f = plan(follow, true);
          if (follow < p.end) {
            f->status = "fulfilled";
            clock_stop = follow;
          } else if (!p.deceased && follow <= options_.as_of + 42) {
            f->status = "booked";
          } else {
            --visit_count;
          }
        }
      }
    } else if (!p.deceased && first_opa <= options_.as_of + 42) {
      plan(first_opa, false)->status = "booked";
    }

    Begin(ResourceType::kServiceRequest, request);
    w_.Key("extension");
    w_.BeginArray();
    w_.BeginObject();
    w_.Key("url");
    w_.Plain(kRttPeriodUrl);
    DatePeriod("valuePeriod", clock_start, clock_stop);
    w_.EndObject();
    w_.EndArray();
    w_.Key("identifier");
    w_.BeginArray();
    std::string ubrn;
    AppendDigits(Mix64(id_key_ ^ next_id_[static_cast<size_t>(ResourceType::kServiceRequest)]) % 900000000000ULL +
                     100000000000ULL,
                 12, ubrn);
    Identifier(kUbrnSystem, ubrn);
    w_.EndArray();
    w_.Key("status");
    w_.Plain(clock_stop ? "completed" : p.deceased ? "revoked" : "active");
    w_.Key("intent");
    w_.Plain("order");
    ConceptArray("category", tables::kSnomed, "3457005", "Patient referral");
    w_.Key("priority");
    w_.Plain(r_.PerMille(150) ? "urgent" : "routine");
    Snomed("code", {"306206005", "Referral to service"});
    Ref("subject", ResourceType::kPatient, p.id);
    DateTime("authoredOn", static_cast<int64_t>(authored) * 1440 + 480 + 10 * r_.Range(0, 60));
    Ref("requester", ResourceType::kPractitionerRole, p.gp->role);
    Snomed("performerType", tables::kSpecialties[static_cast<size_t>(specialty)]);
    RefArray("performer", ResourceType::kOrganization, trust_);
    if (reason != nullptr) RefArray("reasonReference", ResourceType::kCondition, *reason);
    RETURN_IF_ERROR(End(ResourceType::kServiceRequest));

    for (int i = 0; i < visit_count; ++i) RETURN_IF_ERROR(Visit(p, visits[static_cast<size_t>(i)], nullptr));
    return Status::Ok();
  }

  Status Referrals(const PatientCtx& p) {
    int made = 0;
    for (size_t i = 0; i < tables::kChronic.size() && made < 2; ++i) {
      const tables::ChronicCondition& c = tables::kChronic[i];
      if (!p.chronic_active[i] || c.referral_per_mille == 0 || !r_.PerMille(c.referral_per_mille)) continue;
      RETURN_IF_ERROR(Referral(p, c.referral_specialty, &*p.chronic[i]));
      ++made;
    }
    struct Other {
      Specialty specialty;
      int min_age;
      int per_mille;
    };
    static constexpr std::array<Other, 4> kOthers = {{{Specialty::kOphthalmology, 50, 50},
                                                      {Specialty::kOrthopaedics, 30, 40},
                                                      {Specialty::kDermatology, 0, 30},
                                                      {Specialty::kGeneralSurgery, 16, 30}}};
    for (const Other& o : kOthers) {
      if (made >= 2) break;
      if (p.age < o.min_age || !r_.PerMille(o.per_mille)) continue;
      RETURN_IF_ERROR(Referral(p, o.specialty, nullptr));
      ++made;
    }
    return Status::Ok();
  }

  // ---- emergency care and NEWS2 vital signs ----

  void BeginVital(std::string_view profile) {
    Begin(ResourceType::kObservation, NewId(ResourceType::kObservation));
    if (!profile.empty()) {
      w_.Key("meta");
      w_.BeginObject();
      w_.Key("profile");
      w_.BeginArray();
      w_.Plain(profile);
      w_.EndArray();
      w_.EndObject();
    }
    w_.Key("status");
    w_.Plain("final");
    ConceptArray("category", kObservationCategory, "vital-signs", "Vital Signs");
  }
  void VitalContext(const PatientCtx& p, const Id& encounter, int64_t when, const Id& performer) {
    Ref("subject", ResourceType::kPatient, p.id);
    Ref("encounter", ResourceType::kEncounter, encounter);
    DateTime("effectiveDateTime", when);
    RefArray("performer", ResourceType::kPractitioner, performer);
  }
  // A single-quantity vital sign with one LOINC code.
  Status Vital(const PatientCtx& p, std::string_view profile, const Code& loinc, const Id& encounter, int64_t when,
               const Id& performer, int64_t scaled, int decimals, std::string_view unit) {
    BeginVital(profile);
    Concept("code", tables::kLoinc, loinc.code, loinc.display, loinc.display);
    VitalContext(p, encounter, when, performer);
    Quantity("valueQuantity", scaled, decimals, unit, unit);
    return End(ResourceType::kObservation);
  }

  Status BloodPressure(const PatientCtx& p, const Id& encounter, int64_t when, const Id& performer, int systolic_mean,
                       int diastolic_mean) {
    int systolic = std::clamp(static_cast<int>(r_.Normalish(systolic_mean, 14)), 70, 220);
    int diastolic = std::clamp(static_cast<int>(r_.Normalish(diastolic_mean, 9)), 40, systolic - 15);
    BeginVital("http://hl7.org/fhir/StructureDefinition/bp");
    Concept("code", tables::kLoinc, "85354-9", "Blood pressure panel with all children optional", "Blood pressure");
    VitalContext(p, encounter, when, performer);
    w_.Key("component");
    w_.BeginArray();
    w_.BeginObject();
    Concept("code", tables::kLoinc, "8480-6", "Systolic blood pressure");
    Quantity("valueQuantity", systolic, 0, "mm[Hg]", "mm[Hg]");
    w_.EndObject();
    w_.BeginObject();
    Concept("code", tables::kLoinc, "8462-4", "Diastolic blood pressure");
    Quantity("valueQuantity", diastolic, 0, "mm[Hg]", "mm[Hg]");
    w_.EndObject();
    w_.EndArray();
    return End(ResourceType::kObservation);
  }

  // The observations NEWS2 scores: respiratory rate, SpO2, inspired oxygen
  // (air or supplemental), blood pressure, pulse, consciousness (ACVPU) and
  // temperature. `severity` 0 (well) to 3 (critically ill).
  Status VitalSet(const PatientCtx& p, const Id& encounter, int64_t when, const Id& performer, int severity) {
    bool copd = p.chronic_active[3];
    int rr = std::clamp(static_cast<int>(r_.Normalish(16 + 3.5 * severity, 2)), 6, 45);
    int spo2 = std::clamp(static_cast<int>(r_.Normalish(97.5 - 2.5 * severity - (copd ? 3 : 0), 1.2)), 75, 100);
    int fio2 = 21;
    if (severity >= 2 && r_.PerMille(600)) fio2 = severity == 2 ? 28 : 40;
    int hr = std::clamp(static_cast<int>(r_.Normalish(76 + 12.0 * severity, 9)), 35, 180);
    int temp = static_cast<int>(r_.Normalish(368, 3));
    if (severity >= 1 && r_.PerMille(500)) temp += 6 * severity;
    temp = std::clamp(temp, 340, 415);
    size_t acvpu = 0;
    if (severity == 2 && r_.PerMille(150)) acvpu = 1;
    if (severity == 3) {
      static constexpr std::array<int, 5> kWeights = {60, 25, 10, 4, 1};
      acvpu = r_.Weighted(kWeights);
    }
    RETURN_IF_ERROR(Vital(p, "http://hl7.org/fhir/StructureDefinition/resprate", {"9279-1", "Respiratory rate"},
                          encounter, when, performer, rr, 0, "/min"));
    BeginVital("http://hl7.org/fhir/StructureDefinition/oxygensat");
    w_.Key("code");
    w_.BeginObject();
    w_.Key("coding");
    w_.BeginArray();
    CodingValue(tables::kLoinc, "2708-6", "Oxygen saturation in Arterial blood");
    CodingValue(tables::kLoinc, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry");
    w_.EndArray();
    w_.Key("text");
    w_.Plain("SpO2");
    w_.EndObject();
    VitalContext(p, encounter, when, performer);
    Quantity("valueQuantity", spo2, 0, "%", "%");
    RETURN_IF_ERROR(End(ResourceType::kObservation));
    RETURN_IF_ERROR(Vital(p, {}, {"3150-0", "Inhaled oxygen concentration"}, encounter, when, performer, fio2, 0, "%"));
    RETURN_IF_ERROR(BloodPressure(p, encounter, when, performer, 128 - 12 * severity + (p.chronic_active[0] ? 12 : 0),
                                  78 - 5 * severity));
    RETURN_IF_ERROR(Vital(p, "http://hl7.org/fhir/StructureDefinition/heartrate", {"8867-4", "Heart rate"}, encounter,
                          when, performer, hr, 0, "/min"));
    RETURN_IF_ERROR(Vital(p, "http://hl7.org/fhir/StructureDefinition/bodytemp", {"8310-5", "Body temperature"},
                          encounter, when, performer, temp, 1, "Cel"));
    BeginVital({});
    w_.Key("code");
    w_.BeginObject();
    w_.Key("coding");
    w_.BeginArray();
    CodingValue(tables::kSnomed, "1104441000000107", "ACVPU (Alert Confusion Voice Pain Unresponsive) scale score");
    CodingValue(tables::kLoinc, "67775-7", "Level of responsiveness");
    w_.EndArray();
    w_.Key("text");
    w_.Plain("Level of consciousness (ACVPU)");
    w_.EndObject();
    VitalContext(p, encounter, when, performer);
    Snomed("valueCodeableConcept", tables::kAcvpu[acvpu]);
    return End(ResourceType::kObservation);
  }

  Status Emergency(const PatientCtx& p) {
    int per_mille = p.age < 18 ? 150 : p.age < 65 ? 120 : p.age < 80 ? 200 : 350;
    if (!r_.PerMille(per_mille) || p.end - 1 <= p.window) return Status::Ok();
    int32_t day = p.window + static_cast<int32_t>(r_.Below(static_cast<uint32_t>(p.end - 1 - p.window)));
    int64_t arrival = static_cast<int64_t>(day) * 1440 + r_.Range(0, 1439);
    int64_t departure = arrival + r_.Range(90, 420);
    static constexpr std::array<int, 4> kSeverityWeights = {60, 25, 10, 5};
    int severity = static_cast<int>(r_.Weighted(kSeverityWeights));
    const Id& nurse = ed_nurses_[r_.Below(static_cast<uint32_t>(ed_nurses_.size()))].practitioner;

    Id ed = NewId(ResourceType::kEncounter);
    auto encounter_common = [&](std::string_view code, std::string_view display, const Code& type) {
      w_.Key("status");
      w_.Plain("finished");
      w_.Key("class");
      CodingValue(kActCode, code, display);
      ConceptArray("type", tables::kSnomed, type.code, type.display);
      Ref("subject", ResourceType::kPatient, p.id);
      w_.Key("participant");
      w_.BeginArray();
      w_.BeginObject();
      Ref("individual", ResourceType::kPractitioner, ed_consultant_.practitioner);
      w_.EndObject();
      w_.EndArray();
    };
    auto location = [&]() {
      w_.Key("location");
      w_.BeginArray();
      w_.BeginObject();
      Ref("location", ResourceType::kLocation, sites_[0].location);
      w_.Key("status");
      w_.Plain("completed");
      w_.EndObject();
      w_.EndArray();
      Ref("serviceProvider", ResourceType::kOrganization, trust_);
    };
    Begin(ResourceType::kEncounter, ed);
    encounter_common("EMER", "emergency", {"4525004", "Emergency department patient visit"});
    Period("period", arrival, departure);
    location();
    RETURN_IF_ERROR(End(ResourceType::kEncounter));
    RETURN_IF_ERROR(VitalSet(p, ed, arrival + r_.Range(5, 30), nurse, severity));

    bool admitted = severity >= 2 || (p.age >= 75 && r_.PerMille(300));
    if (!admitted) return Status::Ok();
    Id stay = NewId(ResourceType::kEncounter);
    int days = r_.Range(1, 10);
    int64_t discharge = departure + static_cast<int64_t>(days) * 1440 + r_.Range(-300, 300);
    bool ongoing = !p.deceased && discharge >= static_cast<int64_t>(options_.as_of) * 1440;
    int64_t limit = static_cast<int64_t>(p.end) * 1440 + 1439;
    if (!ongoing) discharge = std::min(discharge, limit);
    Begin(ResourceType::kEncounter, stay);
    w_.Key("status");
    w_.Plain(ongoing ? "in-progress" : "finished");
    w_.Key("class");
    CodingValue(kActCode, "IMP", "inpatient encounter");
    ConceptArray("type", tables::kSnomed, "32485007", "Hospital admission");
    Ref("subject", ResourceType::kPatient, p.id);
    w_.Key("participant");
    w_.BeginArray();
    w_.BeginObject();
    Ref("individual", ResourceType::kPractitioner, clinics_[0].consultants[0].practitioner);
    w_.EndObject();
    w_.EndArray();
    Period("period", departure, ongoing ? std::nullopt : std::optional<int64_t>(discharge));
    w_.Key("hospitalization");
    w_.BeginObject();
    Concept("admitSource", kAdmitSource, "emd", "From accident/emergency department");
    if (!ongoing) Concept("dischargeDisposition", kDischargeDisposition, "home", "Home");
    w_.EndObject();
    location();
    Ref("partOf", ResourceType::kEncounter, ed);
    RETURN_IF_ERROR(End(ResourceType::kEncounter));
    int64_t until = ongoing ? static_cast<int64_t>(options_.as_of) * 1440 : discharge;
    int sets = 0;
    for (int64_t t = departure + 240; t < until && sets < 12; t += 720, ++sets) {
      int s = std::max(0, severity - sets / 3);
      RETURN_IF_ERROR(VitalSet(p, stay, t, nurse, s));
    }
    return Status::Ok();
  }

  // ---- immunisations ----

  Status Vaccination(const PatientCtx& p, int32_t day, const Code& vaccine, const Code& disease, bool nasal) {
    Begin(ResourceType::kImmunization, NewId(ResourceType::kImmunization));
    w_.Key("status");
    w_.Plain("completed");
    Snomed("vaccineCode", vaccine);
    Ref("patient", ResourceType::kPatient, p.id);
    int64_t when = static_cast<int64_t>(day) * 1440 + 540 + 5 * r_.Range(0, 90);
    DateTime("occurrenceDateTime", when);
    DateTime("recorded", when + 5);
    w_.Key("primarySource");
    w_.Bool(true);
    w_.Key("lotNumber");
    std::string& out = w_.OpenRaw();
    out.push_back(static_cast<char>('A' + r_.Below(26)));
    out.push_back(static_cast<char>('A' + r_.Below(26)));
    AppendDigits(r_.Below(10000), 4, out);
    w_.CloseRaw();
    if (nasal) {
      Snomed("route", {"46713006", "Nasal route"});
      Quantity("doseQuantity", 2, 1, "mL", "mL");
    } else {
      Snomed("site", {"368208006", "Left upper arm structure"});
      Snomed("route", {"78421000", "Intramuscular route"});
      Quantity("doseQuantity", 5, 1, "mL", "mL");
    }
    w_.Key("performer");
    w_.BeginArray();
    w_.BeginObject();
    Ref("actor", ResourceType::kPractitioner, p.practice->nurse.practitioner);
    w_.EndObject();
    w_.EndArray();
    w_.Key("protocolApplied");
    w_.BeginArray();
    w_.BeginObject();
    w_.Key("targetDisease");
    w_.BeginArray();
    ConceptValue(tables::kSnomed, disease.code, disease.display);
    w_.EndArray();
    w_.Key("doseNumberPositiveInt");
    w_.Int(1);
    w_.EndObject();
    w_.EndArray();
    return End(ResourceType::kImmunization);
  }

  Status Immunisations(const PatientCtx& p) {
    static constexpr Code kFlu = {"1181000221105", "Influenza virus antigen only vaccine product"};
    static constexpr Code kCovid = {"1119349007", "SARS-CoV-2 mRNA vaccine"};
    static constexpr Code kFluDisease = {"6142004", "Influenza"};
    static constexpr Code kCovidDisease = {"840539006", "COVID-19"};
    CivilDate now = CivilFromDays(options_.as_of);
    int last_season = now.month >= 9 ? now.year : now.year - 1;
    bool at_risk =
        p.chronic_active[1] || p.chronic_active[2] || p.chronic_active[3] || p.chronic_active[7] || p.chronic_active[8];
    for (int season = last_season - 1; season <= last_season; ++season) {
      int32_t from = DaysFromCivil({season, 9, 15});
      int32_t day = ToWeekday(from + r_.Range(0, 90));
      if (day >= p.end || day <= p.birth) continue;
      int age = static_cast<int>((static_cast<int64_t>(day - p.birth) * 100) / kDaysPerYearX100);
      int uptake = age >= 65 ? 750 : at_risk ? 450 : (age >= 2 && age <= 16) ? 450 : 0;
      if (r_.PerMille(uptake)) RETURN_IF_ERROR(Vaccination(p, day, kFlu, kFluDisease, age < 18));
      if (age >= 75 && r_.PerMille(600)) {
        RETURN_IF_ERROR(
            Vaccination(p, ToWeekday(std::min(p.end - 1, day + r_.Range(0, 30))), kCovid, kCovidDisease, false));
      }
    }
    return Status::Ok();
  }

  const Options& options_;
  Sink& sink_;
  std::string buf_;
  JsonWriter w_;
  Rng world_;
  Rng r_;  // the current patient's stream
  uint64_t id_key_ = 0;
  std::array<uint64_t, kResourceTypeCount> next_id_{};
  Counts counts_;
  uint64_t nhs_multiplier_ = 1;
  uint64_t nhs_offset_ = 0;
  uint64_t nhs_next_ = 0;
  uint64_t staff_count_ = 0;
  const tables::Region* region_ = nullptr;
  Id trust_{};
  std::vector<Site> sites_;
  std::vector<Practice> practices_;
  std::vector<Clinic> clinics_;
  Staff ed_consultant_{};
  std::array<Staff, 3> ed_nurses_{};
};

}  // namespace

std::string_view ResourceTypeName(ResourceType type) { return kTypeNames[static_cast<size_t>(type)]; }

Status CheckOptions(const Options& options) {
  if (options.patients < 1 || options.patients > kMaxPatients) {
    return InvalidArgumentError("patients must be between 1 and " + std::to_string(kMaxPatients));
  }
  if (options.trust_ods.size() < 3 || options.trust_ods.size() > 8 || !fhir::uk::IsValidOdsCode(options.trust_ods)) {
    return InvalidArgumentError("trust must be an ODS code of 3 to 8 upper-case letters and digits, got \"" +
                                options.trust_ods + "\"");
  }
  if (options.as_of < DaysFromCivil({2000, 1, 1}) || options.as_of > DaysFromCivil({2100, 1, 1})) {
    return InvalidArgumentError("as-of date must be between 2000 and 2100");
  }
  return Status::Ok();
}

Result<Counts> Generate(const Options& options, Sink& sink) {
  RETURN_IF_ERROR(CheckOptions(options));
  Generator generator(options, sink);
  RETURN_IF_ERROR(generator.Run());
  return generator.counts();
}

}  // namespace bevan::synth
