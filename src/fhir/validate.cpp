#include "fhir/validate.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "fhir/model.h"
#include "fhir/primitives.h"
#include "fhir/uk_core.h"

namespace bevan::fhir {

namespace {

// Types and facts the validator treats specially, looked up once in the model.
struct Known {
  const TypeDef* element = nullptr;
  const TypeDef* reference = nullptr;
  const TypeDef* identifier = nullptr;
  const TypeDef* coding = nullptr;
  const TypeDef* codeable_concept = nullptr;
  const TypeDef* resource = nullptr;
  const ElementDef* contained = nullptr;  // DomainResource.contained
  std::unordered_map<const TypeDef*, PrimitiveCheck> checks;
  // Per type, its elements with min > 0.
  std::unordered_map<const TypeDef*, std::vector<const ElementDef*>> required;

  static const Known& Get() {
    static const Known known = [] {
      Known k;
      k.element = FindType("Element");
      k.reference = FindType("Reference");
      k.identifier = FindType("Identifier");
      k.coding = FindType("Coding");
      k.codeable_concept = FindType("CodeableConcept");
      k.resource = FindType("Resource");
      if (const TypeDef* dr = FindType("DomainResource")) k.contained = dr->FindElement("contained");
      for (const TypeDef* t : AllTypes()) {
        if (t->kind == TypeKind::kPrimitive) k.checks[t] = PrimitiveCheckFor(t->name);
        std::vector<const ElementDef*> req;
        for (const ElementDef& e : t->elements) {
          if (e.min > 0) req.push_back(&e);
        }
        if (!req.empty()) k.required.emplace(t, std::move(req));
      }
      return k;
    }();
    return known;
  }
};

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  out += s.substr(0, kMax);
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

class Validator {
 public:
  Validator(const ValidateOptions& options, OperationOutcome& out)
      : options_(options), out_(out), known_(Known::Get()) {}

  void Resource(const json::Value& v, bool contained) {
    if (!v.is_object()) {
      Error(IssueType::kStructure, path_, "a resource must be a JSON object");
      return;
    }
    size_t mark = path_.size();
    const json::Value* rt = v.Find("resourceType");
    if (!rt) {
      Push("resourceType");
      Error(IssueType::kRequired, path_, "missing resourceType");
      path_.resize(mark);
      return;
    }
    if (!rt->is_string()) {
      Push("resourceType");
      Error(IssueType::kStructure, path_, "resourceType must be a string");
      path_.resize(mark);
      return;
    }
    const TypeDef* type = FindResourceType(rt->as_string());
    if (!type) {
      Push("resourceType");
      Error(IssueType::kNotSupported, path_, "unknown resource type " + Quote(rt->as_string()));
      path_.resize(mark);
      return;
    }
    if (path_.empty()) path_ = type->name;
    if (contained && v.Find("contained")) {
      Push("contained");
      Error(IssueType::kInvariant, path_, "a contained resource must not contain resources (dom-2)");
      path_.resize(path_.size() - std::string_view(".contained").size());
    }
    Object(v, type, true);
    path_.resize(mark);
  }

 private:
  bool Full() const { return out_.issues.size() > options_.max_issues; }

  void Error(IssueType code, std::string_view location, std::string message) {
    if (out_.issues.size() > options_.max_issues) return;
    if (out_.issues.size() == options_.max_issues) {
      out_.Add(Severity::kError, IssueType::kTooCostly, std::string(location),
               "too many issues: stopped after " + std::to_string(options_.max_issues));
      return;
    }
    out_.Add(Severity::kError, code, std::string(location), std::move(message));
  }

  void Push(std::string_view name) {
    if (!path_.empty()) path_ += '.';
    path_ += name;
  }
  void PushIndex(size_t i) {
    path_ += '[';
    path_ += std::to_string(i);
    path_ += ']';
  }

  // `via` is the TypeRef the object was reached through (for Reference targets).
  void Object(const json::Value& obj, const TypeDef* type, bool is_resource, const TypeRef* via = nullptr) {
    if (obj.size() == 0 || (is_resource && obj.size() == 1)) {
      Error(IssueType::kStructure, path_, "an element must have a value or children: empty object");
    }
    // Elements seen (by definition), for cardinality and choice checks.
    struct Seen {
      const ElementDef* element;
      std::string_view json_name;
    };
    Seen seen_small[48];
    std::vector<Seen> seen_big;
    size_t n_seen = 0;
    auto remember = [&](const ElementDef* e, std::string_view name) -> const Seen* {
      const Seen* prior = nullptr;
      for (size_t i = 0; i < n_seen; ++i) {
        const Seen& s = i < 48 ? seen_small[i] : seen_big[i - 48];
        if (s.element == e) prior = &s;
      }
      if (n_seen < 48) {
        seen_small[n_seen] = {e, name};
      } else {
        seen_big.push_back({e, name});
      }
      ++n_seen;
      return prior;
    };

    size_t mark = path_.size();
    for (const json::Member& m : obj.members()) {
      if (Full()) return;
      std::string_view key = m.name();
      if (is_resource && key == "resourceType") continue;
      bool ext_form = !key.empty() && key[0] == '_';
      std::string_view name = ext_form ? key.substr(1) : key;
      const TypeRef* choice = nullptr;
      const ElementDef* el = type->FindElement(name, &choice);
      const TypeRef* tr = el ? (choice ? choice : (el->types.empty() ? nullptr : &el->types[0])) : nullptr;
      if (!el || !tr || (ext_form && tr->type->kind != TypeKind::kPrimitive)) {
        Push(key);
        Error(IssueType::kStructure, path_, "unknown element " + Quote(key) + " in " + std::string(type->name));
        path_.resize(mark);
        continue;
      }
      const Seen* prior = remember(el, name);
      if (el->is_choice && prior && prior->json_name != name) {
        Push(name);
        Error(IssueType::kStructure, path_,
              "only one type of " + std::string(el->name) + "[x] is allowed; found " + std::string(prior->json_name) +
                  " and " + std::string(name));
        path_.resize(mark);
        continue;
      }
      Push(name);
      if (ext_form) {
        PrimitiveExtension(m.value, *el);
      } else {
        bool has_partner = false;
        if (tr->type->kind == TypeKind::kPrimitive && m.value.is_array()) {
          std::string partner = "_" + std::string(name);
          has_partner = obj.Find(partner) != nullptr;
        }
        ElementValue(m.value, *el, *tr, has_partner);
      }
      path_.resize(mark);
    }

    if (auto it = known_.required.find(type); it != known_.required.end()) {
      for (const ElementDef* e : it->second) {
        bool present = false;
        for (size_t i = 0; i < n_seen && !present; ++i) {
          present = (i < 48 ? seen_small[i] : seen_big[i - 48]).element == e;
        }
        if (!present) {
          Push(e->name);
          Error(IssueType::kRequired, path_,
                "missing required element " + std::string(e->name) + (e->is_choice ? "[x]" : "") + " (min " +
                    std::to_string(e->min) + ")");
          path_.resize(mark);
        }
      }
    }

    if (type == known_.reference) Reference(obj, via);
    if (type == known_.identifier && options_.uk_core) UkIdentifier(obj);
  }

  void ElementValue(const json::Value& v, const ElementDef& el, const TypeRef& tr, bool has_partner) {
    bool repeating = el.max > 1;
    if (!repeating) {
      if (v.is_array()) {
        Error(IssueType::kStructure, path_, "must not be an array: " + std::string(el.name) + " has at most 1 value");
        return;
      }
      Item(v, el, tr);
      return;
    }
    if (!v.is_array()) {
      Error(IssueType::kStructure, path_, "must be an array: " + std::string(el.name) + " repeats");
      return;
    }
    if (v.size() == 0) {
      Error(IssueType::kStructure, path_, "arrays must not be empty");
      return;
    }
    if (el.max != kUnbounded && v.size() > el.max) {
      Error(IssueType::kStructure, path_,
            "too many values: " + std::to_string(v.size()) + " > max " + std::to_string(el.max));
    }
    size_t mark = path_.size();
    size_t i = 0;
    for (const json::Value& item : v.items()) {
      PushIndex(i++);
      if (item.is_null() && has_partner) {
        // A null placeholder matched by an entry in the `_name` array.
      } else {
        Item(item, el, tr);
      }
      path_.resize(mark);
      if (Full()) return;
    }
  }

  void PrimitiveExtension(const json::Value& v, const ElementDef& el) {
    auto one = [&](const json::Value& item) {
      if (!item.is_object()) {
        Error(IssueType::kStructure, path_, "a primitive's extension part must be a JSON object");
        return;
      }
      Object(item, known_.element, false);
    };
    if (el.max > 1) {
      if (!v.is_array()) {
        Error(IssueType::kStructure, path_, "must be an array: " + std::string(el.name) + " repeats");
        return;
      }
      size_t mark = path_.size();
      size_t i = 0;
      for (const json::Value& item : v.items()) {
        PushIndex(i++);
        if (!item.is_null()) one(item);
        path_.resize(mark);
      }
      return;
    }
    one(v);
  }

  void Item(const json::Value& v, const ElementDef& el, const TypeRef& tr) {
    const TypeDef* t = tr.type;
    switch (t->kind) {
      case TypeKind::kPrimitive: Primitive(v, el, t); return;
      case TypeKind::kResource: Resource(v, known_.contained && el.name == known_.contained->name); return;
      case TypeKind::kComplex:
      case TypeKind::kBackbone:
        if (!v.is_object()) {
          Error(IssueType::kStructure, path_,
                "must be a JSON object (" + std::string(t->name) + "), not " + std::string(json::KindName(v.kind())));
          return;
        }
        Object(v, t, false, &tr);
        if (el.binding_strength == BindingStrength::kRequired && el.binding && el.binding->enumerable) {
          if (t == known_.coding) {
            CodingBinding(v, *el.binding);
          } else if (t == known_.codeable_concept) {
            ConceptBinding(v, *el.binding);
          }
        }
        return;
    }
  }

  void Primitive(const json::Value& v, const ElementDef& el, const TypeDef* t) {
    std::string_view text;
    bool kind_ok = false;
    switch (t->json_kind) {
      case JsonKind::kBoolean:
        kind_ok = v.is_bool();
        text = v.as_bool() ? "true" : "false";
        break;
      case JsonKind::kNumber:
        kind_ok = v.is_number();
        text = v.number_literal();
        break;
      case JsonKind::kString:
      case JsonKind::kNone:
        kind_ok = v.is_string();
        text = v.as_string();
        break;
    }
    if (!kind_ok) {
      std::string_view want = t->json_kind == JsonKind::kBoolean  ? "a JSON boolean"
                              : t->json_kind == JsonKind::kNumber ? "a JSON number"
                                                                  : "a JSON string";
      Error(IssueType::kStructure, path_,
            std::string(t->name) + " must be " + std::string(want) + ", not " + std::string(json::KindName(v.kind())));
      return;
    }
    auto it = known_.checks.find(t);
    PrimitiveCheck check = it == known_.checks.end() ? PrimitiveCheck::kNone : it->second;
    if (check == PrimitiveCheck::kXhtml) {
      std::string_view unsafe = CheckNarrativeSafety(text);
      if (!unsafe.empty()) {
        Error(IssueType::kSecurity, path_, std::string(unsafe));
        return;
      }
    }
    std::string_view reason = CheckPrimitive(check, text);
    if (!reason.empty()) {
      Error(IssueType::kValue, path_,
            "invalid " + std::string(t->name) + " " + Quote(text) + ": " + std::string(reason));
      return;
    }
    if (el.binding_strength == BindingStrength::kRequired && el.binding && el.binding->enumerable &&
        !el.binding->Contains("", text)) {
      Error(IssueType::kCodeInvalid, path_,
            "code " + Quote(text) + " is not in the required value set " + std::string(el.binding->url));
    }
  }

  static std::string_view StringMember(const json::Value& obj, std::string_view key) {
    const json::Value* v = obj.Find(key);
    return v ? v->as_string() : std::string_view();
  }

  void CodingBinding(const json::Value& coding, const ValueSetDef& vs) {
    std::string_view code = StringMember(coding, "code");
    if (code.empty()) return;
    if (!vs.Contains(StringMember(coding, "system"), code)) {
      size_t mark = path_.size();
      Push("code");
      Error(IssueType::kCodeInvalid, path_,
            "code " + Quote(code) + " is not in the required value set " + std::string(vs.url));
      path_.resize(mark);
    }
  }

  void ConceptBinding(const json::Value& concept_value, const ValueSetDef& vs) {
    const json::Value* codings = concept_value.Find("coding");
    if (!codings || !codings->is_array()) return;  // text only: nothing to check
    for (const json::Value& c : codings->items()) {
      if (vs.Contains(StringMember(c, "system"), StringMember(c, "code"))) return;
    }
    size_t mark = path_.size();
    Push("coding");
    Error(IssueType::kCodeInvalid, path_, "no coding is in the required value set " + std::string(vs.url));
    path_.resize(mark);
  }

  void Reference(const json::Value& obj, const TypeRef* via) {
    const json::Value* ref = obj.Find("reference");
    if (!ref || !ref->is_string()) return;
    std::string_view r = ref->as_string();
    size_t mark = path_.size();
    Push("reference");
    std::string_view problem;
    std::string_view target;
    if (r.starts_with("#")) {
      if (r.size() > 1 && !CheckPrimitive(PrimitiveCheck::kId, r.substr(1)).empty())
        problem = "invalid local reference";
    } else if (r.starts_with("urn:uuid:")) {
      problem = CheckPrimitive(PrimitiveCheck::kUuid, r);
    } else if (r.starts_with("urn:oid:")) {
      problem = CheckPrimitive(PrimitiveCheck::kOid, r);
    } else if (size_t q = r.find('?'); q != std::string_view::npos && r.find('/') > q) {
      // A conditional reference (Type?criteria), resolved in a transaction.
      if (!FindResourceType(r.substr(0, q)) || q + 1 == r.size()) {
        problem = "a conditional reference must be Type?criteria with a known resource type";
      } else {
        target = r.substr(0, q);
      }
    } else if (r.find("://") != std::string_view::npos) {
      problem = CheckPrimitive(PrimitiveCheck::kUri, r);
    } else {
      // Type/id or Type/id/_history/vid.
      size_t slash = r.find('/');
      std::string_view type = r.substr(0, slash);
      std::string_view rest = slash == std::string_view::npos ? std::string_view() : r.substr(slash + 1);
      std::string_view id = rest.substr(0, rest.find('/'));
      std::string_view tail = rest.size() > id.size() ? rest.substr(id.size()) : std::string_view();
      if (slash == std::string_view::npos || !FindResourceType(type)) {
        problem = "a relative reference must be Type/id with a known resource type";
      } else if (!CheckPrimitive(PrimitiveCheck::kId, id).empty()) {
        problem = "the id part of the reference is not a valid id";
      } else if (!tail.empty() &&
                 (!tail.starts_with("/_history/") || !CheckPrimitive(PrimitiveCheck::kId, tail.substr(10)).empty())) {
        problem = "a versioned reference must be Type/id/_history/version";
      } else {
        target = type;
      }
    }
    if (!problem.empty()) {
      Error(IssueType::kValue, path_, "invalid reference " + Quote(r) + ": " + std::string(problem));
    } else if (!target.empty() && via && !via->targets.empty()) {
      bool allowed = false;
      std::string list;
      for (std::string_view t : via->targets) {
        if (t == target || t == "Resource") allowed = true;
        if (!list.empty()) list += ", ";
        list += t;
      }
      if (!allowed) {
        Error(IssueType::kInvalid, path_,
              "a reference to " + std::string(target) + " is not allowed here (allowed: " + list + ")");
      }
    }
    path_.resize(mark);
  }

  void UkIdentifier(const json::Value& obj) {
    std::string_view system = StringMember(obj, "system");
    if (system.empty()) return;
    const json::Value* value = obj.Find("value");
    if (!value || !value->is_string()) return;
    size_t mark = path_.size();
    if (system == uk::kNhsNumberSystem && !uk::IsValidNhsNumber(value->as_string())) {
      Push("value");
      // The number itself is patient data: not echoed.
      Error(IssueType::kValue, path_, "invalid NHS number: it must be 10 digits with a valid Modulus 11 check digit");
    } else if ((system == uk::kOdsOrganizationSystem || system == uk::kOdsSiteSystem) &&
               !uk::IsValidOdsCode(value->as_string())) {
      Push("value");
      Error(IssueType::kValue, path_,
            "invalid ODS code " + Quote(value->as_string()) + ": 3 to 10 upper-case letters and digits");
    }
    path_.resize(mark);
  }

 private:
  const ValidateOptions& options_;
  OperationOutcome& out_;
  const Known& known_;
  std::string path_;
};

}  // namespace

OperationOutcome Validate(const json::Value& resource, const ValidateOptions& options) {
  OperationOutcome out;
  Validator v(options, out);
  v.Resource(resource, false);
  return out;
}

OperationOutcome ValidateJson(std::string_view text, const ValidateOptions& options) {
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) {
    OperationOutcome out;
    out.Add(Severity::kFatal, IssueType::kStructure, "", doc.status().message());
    return out;
  }
  return Validate(doc->root(), options);
}

}  // namespace bevan::fhir
