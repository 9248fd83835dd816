#include "fhir/validate.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "fhir/model.h"
#include "fhir/primitives.h"
#include "fhir/uk_core.h"
#include "fhir/xhtml.h"

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
  const TypeDef* bundle = nullptr;
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
      k.bundle = FindType("Bundle");
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
    resource_stack_.push_back(&v);
    // %rootResource: the container for contained resources, else the resource itself.
    root_stack_.push_back(contained && root_stack_.size() ? root_stack_.back() : &v);
    if (!contained) contained_stack_.push_back(v.Find("contained"));
    bool bundle = type == known_.bundle;
    if (bundle) bundle_stack_.push_back(&v);
    Object(v, type, true);
    if (bundle) bundle_stack_.pop_back();
    if (!contained) contained_stack_.pop_back();
    resource_stack_.pop_back();
    root_stack_.pop_back();
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

  void Warning(IssueType code, std::string_view location, std::string message) {
    if (out_.issues.size() >= options_.max_issues) return;
    out_.Add(Severity::kWarning, code, std::string(location), std::move(message));
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
  void Object(const json::Value& obj, const TypeDef* type, bool is_resource, const TypeRef* via = nullptr,
              const ElementDef* element = nullptr) {
    if (obj.size() == 0) {
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
        PrimitiveExtension(m.value, *el, obj.Find(name));
      } else {
        const json::Value* partner = nullptr;
        if (tr->type->kind == TypeKind::kPrimitive && m.value.is_array()) {
          partner = obj.Find("_" + std::string(name));
        }
        ElementValue(m.value, *el, *tr, partner);
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
    if (options_.invariants && !Full() && !resource_stack_.empty()) {
      if (!type->constraints.empty()) {
        options_.invariants->Check(type->constraints, obj, *resource_stack_.back(), *root_stack_.back(), path_, out_);
      }
      if (element && !element->constraints.empty()) {
        options_.invariants->Check(element->constraints, obj, *resource_stack_.back(), *root_stack_.back(), path_,
                                   out_);
      }
    }
  }

  // `partner`: for a primitive array, the `_name` array beside it (or null).
  void ElementValue(const json::Value& v, const ElementDef& el, const TypeRef& tr, const json::Value* partner) {
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
      size_t at = i++;
      PushIndex(at);
      if (item.is_null()) {
        // Only a placeholder for an extension at the same index of `_name`.
        bool matched = partner && partner->is_array() && at < partner->size() && !partner->items()[at].is_null();
        if (!matched)
          Error(IssueType::kStructure, path_,
                "null without an extension at the same index of _" + std::string(el.name));
      } else {
        Item(item, el, tr);
      }
      path_.resize(mark);
      if (Full()) return;
    }
  }

  // The `_name` part of a primitive; `values` is the `name` part (or null).
  void PrimitiveExtension(const json::Value& v, const ElementDef& el, const json::Value* values) {
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
      if (v.size() == 0) {
        Error(IssueType::kStructure, path_, "arrays must not be empty");
        return;
      }
      size_t mark = path_.size();
      size_t i = 0;
      for (const json::Value& item : v.items()) {
        size_t at = i++;
        PushIndex(at);
        if (!item.is_null()) {
          one(item);
        } else if (!values || !values->is_array() || at >= values->size() || values->items()[at].is_null()) {
          Error(IssueType::kStructure, path_,
                "null in _" + std::string(el.name) + " without a value at the same index");
        }
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
        Object(v, t, false, &tr, &el);
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
      XhtmlCheck x = CheckNarrativeXhtml(text);
      switch (x.problem) {
        case XhtmlProblem::kNone: break;
        case XhtmlProblem::kUnsafe: Error(IssueType::kSecurity, path_, std::move(x.message)); return;
        case XhtmlProblem::kMalformed: Error(IssueType::kValue, path_, std::move(x.message)); return;
        case XhtmlProblem::kEmpty: Error(IssueType::kInvariant, path_, "txt-2: " + x.message); return;
      }
      return;
    }
    if (check == PrimitiveCheck::kString && HasControlCharacters(text)) {
      Warning(IssueType::kValue, path_, "string contains control characters (R4: SHOULD NOT)");
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
    if (!codings || !codings->is_array()) {
      // Required binding: text alone does not say which code is meant.
      Error(IssueType::kCodeInvalid, path_,
            "a coding from the required value set " + std::string(vs.url) + " is needed");
      return;
    }
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
      if (r.size() > 1 && !CheckPrimitive(PrimitiveCheck::kId, r.substr(1)).empty()) {
        problem = "invalid local reference";
      } else if (r.size() > 1) {
        // Must name a contained resource of the enclosing resource (ref-1).
        const json::Value* found = FindContained(r.substr(1));
        bool judgeable = !contained_stack_.empty() && (!contained_stack_.back() || contained_stack_.back()->is_array());
        if (!found && judgeable) {
          path_.resize(mark);
          Error(IssueType::kInvariant, path_, "ref-1: " + Quote(r) + " does not name a contained resource");
          return;
        }
        const json::Value* rt = found ? found->Find("resourceType") : nullptr;
        if (rt && rt->is_string() && FindResourceType(rt->as_string())) target = rt->as_string();
      }
    } else if (r.starts_with("urn:uuid:")) {
      problem = CheckPrimitive(PrimitiveCheck::kUuid, r);
      if (problem.empty()) {
        target = BundleEntryType(r);
        if (!FindResourceType(target)) target = {};
      }
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
      // A RESTful absolute URL ends in Type/id or Type/id/_history/v.
      if (problem.empty()) target = TypeOfRestUrl(r);
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

  const json::Value* FindContained(std::string_view id) const {
    if (contained_stack_.empty() || !contained_stack_.back() || !contained_stack_.back()->is_array()) return nullptr;
    for (const json::Value& c : contained_stack_.back()->items()) {
      if (const json::Value* cid = c.Find("id"); cid && cid->is_string() && cid->as_string() == id) return &c;
    }
    return nullptr;
  }

  // The resourceType of the entry of the enclosing Bundle whose fullUrl is `url`, or "".
  std::string_view BundleEntryType(std::string_view url) const {
    if (bundle_stack_.empty()) return {};
    const json::Value* entries = bundle_stack_.back()->Find("entry");
    if (!entries || !entries->is_array()) return {};
    for (const json::Value& e : entries->items()) {
      const json::Value* full = e.Find("fullUrl");
      if (!full || full->as_string() != url) continue;
      const json::Value* res = e.Find("resource");
      const json::Value* rt = res ? res->Find("resourceType") : nullptr;
      return rt ? rt->as_string() : std::string_view();
    }
    return {};
  }

  static std::string_view TypeOfRestUrl(std::string_view url) {
    std::string_view path = url.substr(url.find("://") + 3);
    std::vector<std::string_view> segments;
    size_t start = 0;
    while (start <= path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string_view::npos) slash = path.size();
      segments.push_back(path.substr(start, slash - start));
      start = slash + 1;
    }
    size_t n = segments.size();
    if (n >= 4 && segments[n - 2] == "_history") n -= 2;
    if (n >= 3 && FindResourceType(segments[n - 2]) && CheckPrimitive(PrimitiveCheck::kId, segments[n - 1]).empty()) {
      return segments[n - 2];
    }
    return {};
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
  // `contained` of the enclosing top-level resource, for "#id" references.
  std::vector<const json::Value*> contained_stack_;
  // Enclosing Bundles, for urn:uuid references to their entries.
  std::vector<const json::Value*> bundle_stack_;
  // Enclosing resources, innermost last (%resource, %rootResource).
  std::vector<const json::Value*> resource_stack_;
  std::vector<const json::Value*> root_stack_;
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
