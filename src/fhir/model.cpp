// Loads the generated R4 tables (src/fhir/generated, format in
// tools/gen-model/FORMAT.md) into the structures of model.h, once, on first
// use. Strings point into the static tables wherever possible; only element
// paths and choice names ("valueQuantity") are built. After construction the
// model is never written, so concurrent readers need no locking.

#include "fhir/model.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fhir/generated/model_data.h"

namespace bevan::fhir {

// An open-addressing hash table from every JSON property name of a type to
// its element (and chosen type, for choice names). Capacity is a power of
// two at least twice the number of names, so probes stay short.
struct ElementIndex {
  struct Slot {
    std::string_view name;  // empty: free slot
    const ElementDef* element = nullptr;
    const TypeRef* choice = nullptr;
  };
  std::span<const Slot> slots;
  size_t mask = 0;
};

namespace {

// Short names dominate (ASCII, 2-30 bytes): mix 8 bytes at a time.
inline uint64_t HashName(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  std::memcpy(&w, s.data() + i, s.size() - i);
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 29;
  return h;
}

// The tables are generated and checked in CI; a malformed table is a build
// bug, not an input error, so it stops the process with the reason.
[[noreturn]] void Corrupt(std::string_view what, std::string_view line) {
  std::fprintf(stderr, "bevan: corrupt generated FHIR model: %.*s in line \"%.*s\"\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(line.size()), line.data());
  std::abort();
}

// Splits `text` at `sep`; the pieces view `text`.
class Splitter {
 public:
  Splitter(std::string_view text, char sep) : rest_(text), sep_(sep) {}
  bool Done() const { return done_; }
  std::string_view Next() {
    size_t at = rest_.find(sep_);
    std::string_view piece = rest_.substr(0, at);
    if (at == std::string_view::npos) {
      done_ = true;
      rest_ = {};
    } else {
      rest_.remove_prefix(at + 1);
    }
    return piece;
  }

 private:
  std::string_view rest_;
  char sep_;
  bool done_ = false;
};

std::vector<std::string_view> SplitFields(std::string_view line, size_t expected) {
  std::vector<std::string_view> fields;
  Splitter s(line, '\t');
  while (!s.Done()) fields.push_back(s.Next());
  if (fields.size() != expected) Corrupt("wrong number of fields", line);
  return fields;
}

uint32_t ParseCount(std::string_view text, std::string_view line) {
  if (text == "*") return kUnbounded;
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) Corrupt("bad number", line);
  return value;
}

// Lines of a table, without the trailing empty one.
std::vector<std::string_view> Lines(std::string_view table) {
  std::vector<std::string_view> lines;
  Splitter s(table, '\n');
  while (!s.Done()) {
    std::string_view line = s.Next();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

SearchParamType ParseSearchType(std::string_view text, std::string_view line) {
  static constexpr std::pair<std::string_view, SearchParamType> kTypes[] = {
      {"number", SearchParamType::kNumber},       {"date", SearchParamType::kDate},
      {"string", SearchParamType::kString},       {"token", SearchParamType::kToken},
      {"reference", SearchParamType::kReference}, {"composite", SearchParamType::kComposite},
      {"quantity", SearchParamType::kQuantity},   {"uri", SearchParamType::kUri},
      {"special", SearchParamType::kSpecial},
  };
  for (const auto& [name, type] : kTypes) {
    if (name == text) return type;
  }
  Corrupt("unknown search parameter type", line);
}

class Model {
 public:
  Model() {
    LoadValueSets();
    LoadConstraints();
    LoadTypes();
    LoadSearch();
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Hot (every resource FHIRPath or the validator meets): an open-addressing
  // table with a cheap hash instead of std::unordered_map's.
  const TypeDef* FindType(std::string_view name) const {
    if (type_slots_.empty()) return nullptr;
    size_t mask = type_slots_.size() - 1;
    for (size_t i = NameHash(name) & mask;; i = (i + 1) & mask) {
      const TypeSlot& slot = type_slots_[i];
      if (slot.type == nullptr) return nullptr;
      if (SameName(slot.name, name)) return slot.type;
    }
  }
  std::span<const TypeDef* const> AllTypes() const { return all_types_; }
  std::span<const std::string_view> ResourceTypeNames() const { return resource_type_names_; }
  const ValueSetDef* FindValueSet(std::string_view url) const {
    auto it = value_sets_by_url_.find(url.substr(0, url.find('|')));
    return it == value_sets_by_url_.end() ? nullptr : it->second;
  }
  std::span<const SearchParamDef> AllSearchParams() const { return search_params_; }
  std::span<const ConstraintDef> AllConstraints() const { return constraints_; }
  const ConstraintDef* FindConstraint(std::string_view key) const {
    auto it = constraints_by_key_.find(key);
    return it == constraints_by_key_.end() ? nullptr : it->second;
  }

  const SearchParamDef* FindSearchParam(std::string_view resource_type, std::string_view code) const {
    // Own parameters first, then those of DomainResource and Resource.
    for (const TypeDef* t = FindType(resource_type); t != nullptr; t = t->base) {
      auto it = params_by_base_.find(t->name);
      if (it == params_by_base_.end()) continue;
      const auto& list = it->second;
      auto at = std::lower_bound(list.begin(), list.end(), code,
                                 [](const auto& entry, std::string_view c) { return entry.first < c; });
      if (at != list.end() && at->first == code) return at->second;
    }
    return nullptr;
  }

  std::span<const std::string_view> PatientCompartmentParams(std::string_view resource_type) const {
    auto it = compartment_.find(resource_type);
    return it == compartment_.end() ? std::span<const std::string_view>() : it->second;
  }

 private:
  // Parsed type records, resolved to pointers once every vector has its final size.
  struct PendingTypeRef {
    std::string_view type;
    size_t first_target = 0;
    size_t target_count = 0;
  };
  // A range of constraint_refs_.
  struct PendingConstraints {
    size_t first = 0;
    size_t count = 0;
  };
  struct PendingElement {
    std::string_view value_set;
    size_t first_ref = 0;
    size_t ref_count = 0;
    PendingConstraints constraints;
  };
  struct PendingType {
    std::string_view base;
    size_t first_element = 0;
    size_t element_count = 0;
    PendingConstraints constraints;
  };

  // Appends the comma-separated `list` to `names`; returns its first index.
  static size_t AddNames(std::vector<std::string_view>& names, std::string_view list) {
    size_t first = names.size();
    if (list.empty()) return first;
    Splitter s(list, ',');
    while (!s.Done()) names.push_back(s.Next());
    return first;
  }

  std::string_view Own(std::string text) { return strings_.emplace_back(std::move(text)); }

  void LoadValueSets() {
    struct Pending {
      size_t first_code;
    };
    std::vector<Pending> pending;
    std::string_view system;
    for (std::string_view line : Lines(generated::kValueSets)) {
      if (line.front() == '\t') {
        if (value_sets_.empty() || system.empty()) Corrupt("code outside a system", line);
        codes_.push_back(CodeDef{system, line.substr(1)});
      } else if (line.starts_with("S\t")) {
        system = SplitFields(line, 2)[1];
      } else if (line.starts_with("V\t")) {
        auto f = SplitFields(line, 4);
        ValueSetDef vs;
        vs.url = f[1];
        vs.name = f[2];
        vs.enumerable = f[3] == "1";
        value_sets_.push_back(vs);
        pending.push_back({codes_.size()});
        system = {};
      } else {
        Corrupt("unknown record", line);
      }
    }
    for (size_t i = 0; i < value_sets_.size(); ++i) {
      size_t end = i + 1 < pending.size() ? pending[i + 1].first_code : codes_.size();
      auto first = codes_.begin() + static_cast<ptrdiff_t>(pending[i].first_code);
      auto last = codes_.begin() + static_cast<ptrdiff_t>(end);
      std::sort(first, last, [](const CodeDef& a, const CodeDef& b) {
        return std::tie(a.code, a.system) < std::tie(b.code, b.system);
      });
      value_sets_[i].codes = {codes_.data() + pending[i].first_code, end - pending[i].first_code};
      value_sets_by_url_.emplace(value_sets_[i].url, &value_sets_[i]);
    }
  }

  void LoadConstraints() {
    std::vector<std::string_view> lines = Lines(generated::kConstraints);
    constraints_.reserve(lines.size());  // never reallocates: pointers into it are kept
    for (std::string_view line : lines) {
      if (!line.starts_with("C\t")) Corrupt("unknown record", line);
      auto f = SplitFields(line, 7);
      ConstraintDef c;
      c.key = f[1];
      if (f[2] != "e" && f[2] != "w") Corrupt("unknown severity", line);
      c.is_error = f[2] == "e";
      c.is_best_practice = f[3] == "1";
      c.context = f[4];
      c.source = c.context.substr(0, c.context.find('.'));
      c.human = f[5];
      c.expression = f[6];
      if (c.key.empty() || c.context.empty() || c.expression.empty()) Corrupt("incomplete constraint", line);
      c.index = static_cast<uint32_t>(constraints_.size());
      constraints_.push_back(c);
    }
    for (const ConstraintDef& c : constraints_) {
      // A key shared by several invariants (R4's inv-1) finds none of them.
      auto [it, inserted] = constraints_by_key_.emplace(c.key, &c);
      if (!inserted) it->second = nullptr;
    }
  }

  // Appends the comma-separated constraint indexes `list` to constraint_refs_.
  PendingConstraints AddConstraints(std::string_view list, std::string_view line) {
    PendingConstraints pc{constraint_refs_.size(), 0};
    if (list.empty()) return pc;
    Splitter s(list, ',');
    while (!s.Done()) {
      uint32_t index = ParseCount(s.Next(), line);
      if (index >= constraints_.size()) Corrupt("unknown constraint", line);
      constraint_refs_.push_back(&constraints_[index]);
    }
    pc.count = constraint_refs_.size() - pc.first;
    return pc;
  }

  std::span<const ConstraintDef* const> ConstraintSpan(const PendingConstraints& pc) const {
    return {constraint_refs_.data() + pc.first, pc.count};
  }

  void LoadTypes() {
    std::vector<PendingType> pending_types;
    std::vector<PendingElement> pending_elements;
    std::vector<PendingTypeRef> pending_refs;
    std::vector<std::string_view> type_lines;  // for messages

    for (std::string_view line : Lines(generated::kTypes)) {
      if (line.starts_with("T\t")) {
        auto f = SplitFields(line, 8);
        TypeDef t{};
        t.name = f[1];
        if (!types_.empty() && !(types_.back().name < t.name)) Corrupt("types not sorted", line);
        if (f[2] == "p") {
          t.kind = TypeKind::kPrimitive;
        } else if (f[2] == "c") {
          t.kind = TypeKind::kComplex;
        } else if (f[2] == "r") {
          t.kind = TypeKind::kResource;
        } else if (f[2] == "b") {
          t.kind = TypeKind::kBackbone;
        } else {
          Corrupt("unknown type kind", line);
        }
        t.is_abstract = f[3] == "1";
        t.json_kind = f[5] == "s"   ? JsonKind::kString
                      : f[5] == "n" ? JsonKind::kNumber
                      : f[5] == "b" ? JsonKind::kBoolean
                                    : JsonKind::kNone;
        t.regex = f[6];
        types_.push_back(t);
        pending_types.push_back({f[4], pending_elements.size(), 0, AddConstraints(f[7], line)});
        type_lines.push_back(line);
      } else if (line.starts_with("E\t")) {
        if (types_.empty()) Corrupt("element before any type", line);
        auto f = SplitFields(line, 9);
        ElementDef e;
        e.name = f[1];
        e.min = ParseCount(f[2], line);
        e.max = ParseCount(f[3], line);
        for (char flag : f[4]) {
          if (flag == 'c') e.is_choice = true;
          if (flag == 's') e.is_summary = true;
          if (flag == 'm') e.is_modifier = true;
        }
        switch (f[5].empty() ? '?' : f[5].front()) {
          case 'r': e.binding_strength = BindingStrength::kRequired; break;
          case 'e': e.binding_strength = BindingStrength::kExtensible; break;
          case 'p': e.binding_strength = BindingStrength::kPreferred; break;
          case 'x': e.binding_strength = BindingStrength::kExample; break;
          case '-': e.binding_strength = BindingStrength::kNone; break;
          default: Corrupt("unknown binding strength", line);
        }
        PendingElement pe{f[6], pending_refs.size(), 0, AddConstraints(f[8], line)};
        Splitter refs(f[7], ' ');
        while (!refs.Done()) {
          std::string_view ref = refs.Next();
          PendingTypeRef pr;
          size_t paren = ref.find('(');
          if (paren == std::string_view::npos) {
            pr.type = ref;
            pr.first_target = targets_.size();
          } else {
            if (ref.back() != ')') Corrupt("bad type reference", line);
            pr.type = ref.substr(0, paren);
            pr.first_target = AddNames(targets_, ref.substr(paren + 1, ref.size() - paren - 2));
          }
          pr.target_count = targets_.size() - pr.first_target;
          pending_refs.push_back(pr);
        }
        pe.ref_count = pending_refs.size() - pe.first_ref;
        if (pe.ref_count == 0 || (!e.is_choice && pe.ref_count != 1)) Corrupt("bad type list", line);
        elements_.push_back(e);
        pending_elements.push_back(pe);
        ++pending_types.back().element_count;
      } else {
        Corrupt("unknown record", line);
      }
    }

    // Every vector is complete: resolve names to pointers.
    for (TypeDef& t : types_) types_by_name_.emplace(t.name, &t);
    BuildTypeSlots();  // rebuilt below once the aliases are in
    for (std::string_view line : Lines(generated::kTypeAliases)) {
      auto f = SplitFields(line, 2);
      const TypeDef* target = FindType(f[1]);
      if (target == nullptr) Corrupt("alias of an unknown type", line);
      types_by_name_.emplace(f[0], target);
    }
    BuildTypeSlots();
    auto resolve = [&](std::string_view name, std::string_view line) {
      const TypeDef* t = FindType(name);
      if (t == nullptr) Corrupt("unknown type", line);
      return t;
    };
    type_refs_.reserve(pending_refs.size());
    for (const PendingTypeRef& pr : pending_refs) {
      type_refs_.push_back(TypeRef{resolve(pr.type, pr.type), {targets_.data() + pr.first_target, pr.target_count}});
    }
    for (size_t i = 0; i < types_.size(); ++i) {
      TypeDef& t = types_[i];
      const PendingType& pt = pending_types[i];
      if (!pt.base.empty()) t.base = resolve(pt.base, type_lines[i]);
      t.constraints = ConstraintSpan(pt.constraints);
      for (size_t j = pt.first_element; j < pt.first_element + pt.element_count; ++j) {
        ElementDef& e = elements_[j];
        const PendingElement& pe = pending_elements[j];
        e.types = {type_refs_.data() + pe.first_ref, pe.ref_count};
        e.constraints = ConstraintSpan(pe.constraints);
        e.path = Own(std::string(t.name) + "." + std::string(e.name) + (e.is_choice ? "[x]" : ""));
        if (e.binding_strength == BindingStrength::kRequired && !pe.value_set.empty()) {
          e.binding = FindValueSet(pe.value_set);
          if (e.binding == nullptr) Corrupt("required binding to an unknown value set", type_lines[i]);
        }
      }
      t.elements = {elements_.data() + pt.first_element, pt.element_count};
    }
    BuildIndexes();

    all_types_.reserve(types_.size());
    for (const TypeDef& t : types_) {
      all_types_.push_back(&t);
      if (t.kind == TypeKind::kResource && !t.is_abstract) resource_type_names_.push_back(t.name);
    }
  }

  void BuildIndexes() {
    // Sizes first, so that slots_ never reallocates under the spans.
    std::vector<size_t> capacities;
    size_t total = 0;
    for (const TypeDef& t : types_) {
      size_t names = 0;
      for (const ElementDef& e : t.elements) names += e.is_choice ? e.types.size() : 1;
      size_t capacity = 4;
      while (capacity < 2 * names) capacity *= 2;
      capacities.push_back(capacity);
      total += capacity;
    }
    slots_.resize(total);
    indexes_.resize(types_.size());
    size_t offset = 0;
    for (size_t i = 0; i < types_.size(); ++i) {
      TypeDef& t = types_[i];
      ElementIndex& index = indexes_[i];
      std::span<ElementIndex::Slot> slots(slots_.data() + offset, capacities[i]);
      offset += capacities[i];
      index.slots = slots;
      index.mask = capacities[i] - 1;
      auto insert = [&](std::string_view name, const ElementDef* e, const TypeRef* choice) {
        for (size_t at = HashName(name) & index.mask;; at = (at + 1) & index.mask) {
          if (slots[at].name.empty()) {
            slots[at] = {name, e, choice};
            return;
          }
          if (slots[at].name == name) Corrupt("duplicate JSON name", name);
        }
      };
      for (const ElementDef& e : t.elements) {
        if (!e.is_choice) {
          insert(e.name, &e, nullptr);
          continue;
        }
        for (const TypeRef& ref : e.types) {
          // The JSON name capitalises only the first letter: valueDateTime.
          std::string name(e.name);
          name += static_cast<char>(std::toupper(static_cast<unsigned char>(ref.type->name.front())));
          name.append(ref.type->name.substr(1));
          insert(Own(std::move(name)), &e, &ref);
        }
      }
      t.element_index = &index;
    }
  }

  void LoadSearch() {
    struct Pending {
      size_t first_base, base_count, first_target, target_count, first_component, component_count;
    };
    std::vector<Pending> pending;
    for (std::string_view line : Lines(generated::kSearch)) {
      if (line.starts_with("P\t")) {
        auto f = SplitFields(line, 7);
        SearchParamDef p{};
        p.url = f[1];
        p.code = f[2];
        p.type = ParseSearchType(f[3], line);
        p.expression = f[6];
        Pending pp{};
        pp.first_base = AddNames(search_names_, f[4]);
        pp.base_count = search_names_.size() - pp.first_base;
        pp.first_target = AddNames(search_names_, f[5]);
        pp.target_count = search_names_.size() - pp.first_target;
        pp.first_component = components_.size();
        search_params_.push_back(p);
        pending.push_back(pp);
      } else if (line.starts_with("K\t")) {
        if (pending.empty()) Corrupt("component before any parameter", line);
        auto f = SplitFields(line, 3);
        components_.push_back(SearchParamComponent{f[1], f[2]});
        ++pending.back().component_count;
      } else if (line.starts_with("M\t")) {
        auto f = SplitFields(line, 3);
        size_t first = AddNames(search_names_, f[2]);
        compartment_pending_.emplace_back(f[1], std::make_pair(first, search_names_.size() - first));
      } else {
        Corrupt("unknown record", line);
      }
    }
    for (size_t i = 0; i < search_params_.size(); ++i) {
      SearchParamDef& p = search_params_[i];
      const Pending& pp = pending[i];
      p.bases = {search_names_.data() + pp.first_base, pp.base_count};
      p.targets = {search_names_.data() + pp.first_target, pp.target_count};
      p.components = {components_.data() + pp.first_component, pp.component_count};
      for (std::string_view base : p.bases) params_by_base_[base].emplace_back(p.code, &p);
    }
    for (auto& [base, list] : params_by_base_) {
      std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t i = 1; i < list.size(); ++i) {
        if (list[i - 1].first == list[i].first) Corrupt("duplicate search parameter code", list[i].first);
      }
    }
    for (const auto& [resource, range] : compartment_pending_) {
      compartment_.emplace(resource,
                           std::span<const std::string_view>(search_names_.data() + range.first, range.second));
    }
    compartment_pending_.clear();
  }

  // Owned strings; a deque never moves its elements, so views stay valid.
  std::deque<std::string> strings_;
  // Lists of names, filled before any span points into them.
  std::vector<std::string_view> targets_;       // Reference/canonical targets
  std::vector<std::string_view> search_names_;  // search bases and targets, compartment params
  std::vector<CodeDef> codes_;
  std::vector<ValueSetDef> value_sets_;
  std::vector<TypeDef> types_;
  std::vector<ElementDef> elements_;
  std::vector<TypeRef> type_refs_;
  std::vector<ElementIndex::Slot> slots_;
  std::vector<ElementIndex> indexes_;
  std::vector<SearchParamDef> search_params_;
  std::vector<SearchParamComponent> components_;
  // AllConstraints(), sized once; constraint_refs_ holds the types' and
  // elements' lists; constraints_by_key_ maps an ambiguous key to null.
  std::vector<ConstraintDef> constraints_;
  std::vector<const ConstraintDef*> constraint_refs_;
  std::unordered_map<std::string_view, const ConstraintDef*> constraints_by_key_;
  std::vector<std::pair<std::string_view, std::pair<size_t, size_t>>> compartment_pending_;

  std::vector<const TypeDef*> all_types_;
  std::vector<std::string_view> resource_type_names_;
  std::unordered_map<std::string_view, const TypeDef*> types_by_name_;
  struct TypeSlot {
    std::string_view name;
    const TypeDef* type = nullptr;
  };
  std::vector<TypeSlot> type_slots_;  // power-of-two size, at most half full

  // Type names are short: the first and last eight bytes (overlapping for
  // names under 16) and the length decide almost always, with fixed-size
  // loads the compiler keeps inline (no memcpy or memcmp calls).
  static uint64_t Head8(std::string_view s) {
    uint64_t v = 0;
    if (s.size() >= 8) {
      std::memcpy(&v, s.data(), 8);
    } else {
      for (size_t i = 0; i < s.size(); ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(s[i])) << (8 * i);
    }
    return v;
  }
  static uint64_t Tail8(std::string_view s) {
    uint64_t v = 0;
    if (s.size() >= 8) std::memcpy(&v, s.data() + s.size() - 8, 8);
    return v;
  }
  static size_t NameHash(std::string_view s) {
    uint64_t h = (Head8(s) ^ (Tail8(s) * 0x9E3779B97F4A7C15ULL) ^ s.size()) * 0xD6E8FEB86659FD93ULL;
    return static_cast<size_t>(h ^ (h >> 32));
  }
  static bool SameName(std::string_view a, std::string_view b) {
    if (a.size() != b.size() || Head8(a) != Head8(b) || Tail8(a) != Tail8(b)) return false;
    return a.size() <= 16 || std::memcmp(a.data() + 8, b.data() + 8, a.size() - 16) == 0;
  }

  void BuildTypeSlots() {
    size_t n = 16;
    while (n < types_by_name_.size() * 4) n *= 2;
    type_slots_.assign(n, TypeSlot{});
    for (const auto& [name, type] : types_by_name_) {
      for (size_t i = NameHash(name) & (n - 1);; i = (i + 1) & (n - 1)) {
        if (type_slots_[i].type == nullptr) {
          type_slots_[i] = {name, type};
          break;
        }
      }
    }
  }
  std::unordered_map<std::string_view, const ValueSetDef*> value_sets_by_url_;
  std::unordered_map<std::string_view, std::vector<std::pair<std::string_view, const SearchParamDef*>>> params_by_base_;
  std::unordered_map<std::string_view, std::span<const std::string_view>> compartment_;
};

const Model& GetModel() {
  // Built on first use; C++ guarantees one thread builds it while others wait.
  static const Model model;
  return model;
}

}  // namespace

const ElementDef* TypeDef::FindElement(std::string_view json_name, const TypeRef** choice) const {
  if (choice != nullptr) *choice = nullptr;
  if (element_index == nullptr || json_name.empty()) return nullptr;
  const ElementIndex& index = *element_index;
  for (size_t at = HashName(json_name) & index.mask;; at = (at + 1) & index.mask) {
    const ElementIndex::Slot& slot = index.slots[at];
    if (slot.name.empty()) return nullptr;
    if (slot.name.size() == json_name.size() &&
        std::memcmp(slot.name.data(), json_name.data(), json_name.size()) == 0) {
      if (choice != nullptr) *choice = slot.choice;
      return slot.element;
    }
  }
}

bool TypeDef::IsA(const TypeDef* ancestor) const {
  for (const TypeDef* t = this; t != nullptr; t = t->base) {
    if (t == ancestor) return true;
  }
  return false;
}

bool ValueSetDef::Contains(std::string_view system, std::string_view code) const {
  auto it = std::lower_bound(codes.begin(), codes.end(), code,
                             [](const CodeDef& c, std::string_view wanted) { return c.code < wanted; });
  for (; it != codes.end() && it->code == code; ++it) {
    if (system.empty() || it->system == system) return true;
  }
  return false;
}

const TypeDef* FindType(std::string_view name) { return GetModel().FindType(name); }

const TypeDef* FindResourceType(std::string_view name) {
  const TypeDef* t = GetModel().FindType(name);
  return t != nullptr && t->kind == TypeKind::kResource && !t->is_abstract ? t : nullptr;
}

std::span<const TypeDef* const> AllTypes() { return GetModel().AllTypes(); }

std::span<const std::string_view> ResourceTypeNames() { return GetModel().ResourceTypeNames(); }

const ValueSetDef* FindValueSet(std::string_view url) { return GetModel().FindValueSet(url); }

std::span<const SearchParamDef> AllSearchParams() { return GetModel().AllSearchParams(); }

const SearchParamDef* FindSearchParam(std::string_view resource_type, std::string_view code) {
  return GetModel().FindSearchParam(resource_type, code);
}

std::span<const std::string_view> PatientCompartmentParams(std::string_view resource_type) {
  return GetModel().PatientCompartmentParams(resource_type);
}

std::span<const ConstraintDef> AllConstraints() { return GetModel().AllConstraints(); }

const ConstraintDef* FindConstraint(std::string_view key) { return GetModel().FindConstraint(key); }

std::string_view FhirVersion() { return generated::kFhirVersion; }

}  // namespace bevan::fhir
