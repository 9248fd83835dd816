// Built-in reference tables for the synthetic data generator: names, places,
// clinical codes. Internal to src/synth.
//
// Places are real English towns with real postcode areas and district
// numbers, and Ofcom's drama-reserved telephone ranges; street names and the
// inward part of postcodes are made up. Clinical codes are SNOMED CT (dm+d
// for medicines) and LOINC.
#pragma once

#include <array>
#include <string_view>

namespace bevan::synth::tables {

using std::string_view;

inline constexpr std::array<string_view, 64> kMaleGiven = {
    "Oliver",      "George", "Harry",   "Jack",     "Jacob",  "Noah",    "Charlie", "Muhammad", "Thomas",   "Oscar",
    "William",     "James",  "Leo",     "Alfie",    "Henry",  "Joshua",  "Freddie", "Archie",   "Ethan",    "Isaac",
    "Alexander",   "Joseph", "Edward",  "Samuel",   "Max",    "Daniel",  "Arthur",  "Lucas",    "Mohammed", "Logan",
    "David",       "John",   "Michael", "Paul",     "Andrew", "Peter",   "Richard", "Mark",     "Stephen",  "Robert",
    "Christopher", "Ian",    "Gary",    "Kevin",    "Colin",  "Keith",   "Brian",   "Alan",     "Raj",      "Amit",
    "Sanjay",      "Imran",  "Tariq",   "Olusegun", "Kwame",  "Chinedu", "Tomasz",  "Piotr",    "Connor",   "Ryan",
    "Kieran",      "Dylan",  "Liam",    "Owen"};
inline constexpr std::array<string_view, 64> kFemaleGiven = {
    "Olivia", "Amelia",    "Isla",      "Ava",     "Emily",   "Sophia", "Grace",  "Mia",      "Poppy",     "Ella",
    "Lily",   "Evie",      "Isabella",  "Sophie",  "Ivy",     "Freya",  "Harper", "Willow",   "Charlotte", "Jessica",
    "Sarah",  "Emma",      "Rachel",    "Laura",   "Claire",  "Helen",  "Susan",  "Margaret", "Patricia",  "Elizabeth",
    "Mary",   "Jean",      "Joan",      "Dorothy", "Barbara", "Linda",  "Karen",  "Julie",    "Nicola",    "Joanne",
    "Alison", "Deborah",   "Priya",     "Aisha",   "Fatima",  "Ayesha", "Zainab", "Anita",    "Sunita",    "Ngozi",
    "Abena",  "Agnieszka", "Katarzyna", "Siobhan", "Niamh",   "Bethan", "Megan",  "Chloe",    "Hannah",    "Lucy",
    "Zara",   "Maryam",    "Ruby",      "Florence"};
inline constexpr std::array<string_view, 80> kFamily = {
    "Smith",      "Jones",    "Williams", "Taylor",   "Brown",     "Davies",   "Evans",    "Wilson",  "Thomas",
    "Johnson",    "Roberts",  "Robinson", "Thompson", "Wright",    "Walker",   "White",    "Edwards", "Hughes",
    "Green",      "Hall",     "Lewis",    "Harris",   "Clarke",    "Patel",    "Jackson",  "Wood",    "Turner",
    "Martin",     "Cooper",   "Hill",     "Ward",     "Morris",    "Moore",    "Clark",    "Lee",     "King",
    "Baker",      "Harrison", "Morgan",   "Allen",    "James",     "Scott",    "Phillips", "Watson",  "Davis",
    "Parker",     "Price",    "Bennett",  "Young",    "Griffiths", "Mitchell", "Kelly",    "Cook",    "Carter",
    "Richardson", "Bailey",   "Collins",  "Bell",     "Shaw",      "Murphy",   "Miller",   "Cox",     "Richards",
    "Khan",       "Ali",      "Hussain",  "Ahmed",    "Begum",     "Shah",     "Singh",    "Kaur",    "Sharma",
    "Okafor",     "Mensah",   "Adeyemi",  "Nowak",    "Kowalski",  "O'Brien",  "McDonald", "Chen"};
inline constexpr std::array<string_view, 40> kStreet = {
    "Church",  "Station", "Victoria",  "Park",     "Mill",      "Manor",      "Queen's",     "King's",
    "Albert",  "York",    "New",       "High",     "Chapel",    "Grange",     "Springfield", "Meadow",
    "Oak",     "Beech",   "Ash",       "Elm",      "Willow",    "Highfield",  "Green",       "North",
    "South",   "West",    "Windsor",   "Cromwell", "Nelson",    "Wellington", "Moorland",    "Ridgeway",
    "Orchard", "Brook",   "Westfield", "Hollins",  "Fairfield", "Rosemount",  "Heath",       "Canal"};
inline constexpr std::array<string_view, 10> kStreetSuffix = {"Road",  "Street",   "Lane", "Avenue",  "Close",
                                                              "Drive", "Crescent", "Way",  "Gardens", "Terrace"};
inline constexpr std::array<string_view, 12> kPracticeStem = {
    "Surgery", "Medical Centre", "Health Centre", "Medical Practice",    "Family Practice", "Group Practice",
    "Surgery", "Medical Centre", "Partnership",   "Primary Care Centre", "Health Practice", "Surgery"};
// Postcode inward letters exclude C, I, K, M, O and V.
inline constexpr string_view kInwardLetters = "ABDEFGHJLNPQRSTUWXYZ";

struct Town {
  string_view name;
  string_view county;
  string_view area;  // postcode area ("LS")
  int district_lo;   // outward district numbers used
  int district_hi;
  int weight;  // share of the region's patients
};

struct Region {
  string_view name;
  char practice_letter;      // first letter of GP practice ODS codes there
  string_view phone_prefix;  // Ofcom drama range: prefix + 3 digits
  std::array<Town, 4> towns;
};

inline constexpr std::array<Region, 6> kRegions = {{
    {"Yorkshire and the Humber",
     'B',
     "0113 496 0",
     {{{"Leeds", "West Yorkshire", "LS", 1, 29, 8},
       {"Bradford", "West Yorkshire", "BD", 1, 24, 5},
       {"Wakefield", "West Yorkshire", "WF", 1, 17, 3},
       {"Harrogate", "North Yorkshire", "HG", 1, 5, 2}}}},
    {"North West",
     'P',
     "0161 496 0",
     {{{"Manchester", "Greater Manchester", "M", 1, 40, 8},
       {"Stockport", "Greater Manchester", "SK", 1, 8, 3},
       {"Bolton", "Greater Manchester", "BL", 1, 7, 3},
       {"Oldham", "Greater Manchester", "OL", 1, 16, 3}}}},
    {"Midlands",
     'M',
     "0121 496 0",
     {{{"Birmingham", "West Midlands", "B", 1, 99, 9},
       {"Coventry", "West Midlands", "CV", 1, 8, 4},
       {"Wolverhampton", "West Midlands", "WV", 1, 16, 3},
       {"Walsall", "West Midlands", "WS", 1, 10, 2}}}},
    {"London",
     'F',
     "020 7946 0",
     {{{"London", "Greater London", "E", 1, 18, 5},
       {"London", "Greater London", "SE", 1, 28, 5},
       {"London", "Greater London", "N", 1, 22, 4},
       {"London", "Greater London", "SW", 1, 20, 4}}}},
    {"South West",
     'L',
     "0117 496 0",
     {{{"Bristol", "City of Bristol", "BS", 1, 16, 7},
       {"Bath", "Somerset", "BA", 1, 2, 2},
       {"Weston-super-Mare", "Somerset", "BS", 22, 24, 2},
       {"Clevedon", "Somerset", "BS", 21, 21, 1}}}},
    {"North East",
     'A',
     "0191 498 0",
     {{{"Newcastle upon Tyne", "Tyne and Wear", "NE", 1, 15, 7},
       {"Sunderland", "Tyne and Wear", "SR", 1, 6, 4},
       {"Gateshead", "Tyne and Wear", "NE", 8, 11, 3},
       {"Durham", "County Durham", "DH", 1, 7, 2}}}},
}};

struct Code {
  string_view code;
  string_view display;
};

inline constexpr string_view kSnomed = "http://snomed.info/sct";
inline constexpr string_view kLoinc = "http://loinc.org";
inline constexpr string_view kUcum = "http://unitsofmeasure.org";

// Specialties (SNOMED CT, the R4 practice-setting codes).
enum class Specialty : uint8_t {
  kGeneralPractice,
  kCardiology,
  kRespiratory,
  kEndocrinology,
  kOrthopaedics,
  kGeneralSurgery,
  kOphthalmology,
  kDermatology,
  kEmergency,
};
inline constexpr int kSpecialtyCount = 9;
inline constexpr std::array<Code, kSpecialtyCount> kSpecialties = {{
    {"394814009", "General practice"},
    {"394579002", "Cardiology"},
    {"418112009", "Pulmonary medicine"},
    {"394583002", "Endocrinology"},
    {"394801008", "Trauma and orthopaedics"},
    {"394609007", "General surgery"},
    {"394594003", "Ophthalmology"},
    {"394582007", "Dermatology"},
    {"773568002", "Emergency medicine"},
}};
// Outpatient specialties (consultant-led clinics at the trust).
inline constexpr std::array<Specialty, 7> kOutpatientSpecialties = {
    Specialty::kCardiology,     Specialty::kRespiratory,   Specialty::kEndocrinology, Specialty::kOrthopaedics,
    Specialty::kGeneralSurgery, Specialty::kOphthalmology, Specialty::kDermatology};

struct Medicine {
  Code code;  // dm+d VMP (SNOMED CT)
  string_view dosage;
  int quantity;      // per issue
  string_view unit;  // "tablet", "capsule", "inhaler"
  int supply_days;   // per issue
};

// Long-term conditions: prevalence per mille by age band (0-17, 18-39,
// 40-59, 60-79, 80+), roughly England's QOF registers; and the repeat
// medicines that go with them.
struct ChronicCondition {
  Code code;
  std::array<int, 5> per_mille;
  int min_onset_age;
  std::array<Medicine, 2> medicines;  // code empty: none
  Specialty referral_specialty;
  int referral_per_mille;
};

inline constexpr Medicine kNoMedicine = {{"", ""}, "", 0, "", 0};

inline constexpr std::array<ChronicCondition, 10> kChronic = {{
    {{"59621000", "Essential hypertension"},
     {{0, 20, 130, 380, 580}},
     25,
     {{{{"319283006", "Amlodipine 5mg tablets"}, "One tablet once a day", 28, "tablet", 28},
       {{"318902006", "Ramipril 5mg capsules"}, "One capsule once a day", 28, "capsule", 28}}},
     Specialty::kCardiology,
     60},
    {{"44054006", "Type 2 diabetes mellitus"},
     {{1, 15, 80, 170, 190}},
     25,
     {{{{"325278007", "Metformin 500mg tablets"}, "One tablet twice a day with meals", 56, "tablet", 28},
       {{"320000009", "Atorvastatin 20mg tablets"}, "One tablet at night", 28, "tablet", 28}}},
     Specialty::kEndocrinology,
     80},
    {{"195967001", "Asthma"},
     {{90, 70, 65, 70, 60}},
     3,
     {{{{"320176004", "Salbutamol 100micrograms/dose inhaler CFC free"},
        "Two puffs when required up to four times a day",
        1,
        "inhaler",
        30},
       kNoMedicine}},
     Specialty::kRespiratory,
     40},
    {{"13645005", "Chronic obstructive pulmonary disease"},
     {{0, 1, 15, 55, 80}},
     40,
     {{{{"320176004", "Salbutamol 100micrograms/dose inhaler CFC free"},
        "Two puffs when required up to four times a day",
        1,
        "inhaler",
        30},
       kNoMedicine}},
     Specialty::kRespiratory,
     120},
    {{"35489007", "Depressive disorder"},
     {{15, 150, 150, 120, 100}},
     14,
     {{{{"321944007", "Sertraline 50mg tablets"}, "One tablet once a day", 28, "tablet", 28}, kNoMedicine}},
     Specialty::kGeneralPractice,
     0},
    {{"49436004", "Atrial fibrillation"},
     {{0, 1, 10, 60, 140}},
     40,
     {{{{"703907002", "Apixaban 5mg tablets"}, "One tablet twice a day", 56, "tablet", 28},
       {{"318419005", "Bisoprolol fumarate 2.5mg tablets"}, "One tablet once a day", 28, "tablet", 28}}},
     Specialty::kCardiology,
     150},
    {{"40930008", "Hypothyroidism"},
     {{2, 20, 40, 70, 80}},
     15,
     {{{{"3183011000001101", "Levothyroxine sodium 50microgram tablets"},
        "One tablet in the morning",
        28,
        "tablet",
        28},
       kNoMedicine}},
     Specialty::kEndocrinology,
     20},
    {{"84114007", "Heart failure"},
     {{0, 1, 4, 25, 80}},
     40,
     {{{{"318419005", "Bisoprolol fumarate 2.5mg tablets"}, "One tablet once a day", 28, "tablet", 28}, kNoMedicine}},
     Specialty::kCardiology,
     250},
    {{"433144002", "Chronic kidney disease stage 3"},
     {{0, 2, 20, 90, 250}},
     30,
     {{kNoMedicine, kNoMedicine}},
     Specialty::kGeneralPractice,
     0},
    {{"396275006", "Osteoarthritis"},
     {{0, 10, 80, 220, 350}},
     35,
     {{{{"322236009", "Paracetamol 500mg tablets"},
        "Two tablets up to four times a day when required",
        100,
        "tablet",
        25},
       kNoMedicine}},
     Specialty::kOrthopaedics,
     120},
}};

// Self-limiting problems treated with a short acute course.
struct AcuteCondition {
  Code code;
  Medicine medicine;
};
inline constexpr std::array<AcuteCondition, 4> kAcute = {{
    {{"68566005", "Urinary tract infectious disease"},
     {{"324357009", "Nitrofurantoin 100mg modified-release capsules"},
      "One capsule twice a day for 3 days",
      6,
      "capsule",
      3}},
    {{"54150009", "Upper respiratory infection"},
     {{"322236009", "Paracetamol 500mg tablets"}, "Two tablets up to four times a day when required", 32, "tablet", 4}},
    {{"385093006", "Community acquired pneumonia"},
     {{"323510009", "Amoxicillin 500mg capsules"}, "One capsule three times a day for 5 days", 15, "capsule", 5}},
    {{"65363002", "Otitis media"},
     {{"323510009", "Amoxicillin 500mg capsules"}, "One capsule three times a day for 5 days", 15, "capsule", 5}},
}};

// Level of consciousness (ACVPU) answers, SNOMED CT.
inline constexpr std::array<Code, 5> kAcvpu = {{
    {"248234008", "Mentally alert"},
    {"130987000", "Acute confusion"},
    {"300202002", "Responds to voice"},
    {"450847001", "Responds to pain"},
    {"422768004", "Unresponsive"},
}};

}  // namespace bevan::synth::tables
