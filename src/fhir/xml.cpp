#include "fhir/xml.h"

#include <expat.h>

#include <climits>
#include <utility>

#include "fhir/model.h"

namespace bevan::fhir {

namespace {

// Separates a namespace URI from a local name in expat's names. It cannot
// occur in XML 1.0 names or text, so it never collides with real content.
constexpr char kNsSeparator = '\x01';
constexpr std::string_view kXmlNamespace = "http://www.w3.org/XML/1998/namespace";

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

void SplitName(const XML_Char* qualified, std::string& ns, std::string& local) {
  std::string_view q(qualified);
  size_t sep = q.find(kNsSeparator);
  if (sep == std::string_view::npos) {
    ns.clear();
    local.assign(q);
  } else {
    ns.assign(q.substr(0, sep));
    local.assign(q.substr(sep + 1));
  }
}

std::string Position(uint64_t line, uint64_t column) {
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// Builds an XmlElement tree from expat's events.
class TreeBuilder {
 public:
  explicit TreeBuilder(const XmlOptions& options) : options_(options) {}

  Result<std::unique_ptr<XmlElement>> Parse(std::string_view xml) {
    if (xml.size() > options_.max_size || xml.size() > static_cast<size_t>(INT_MAX)) {
      return ResourceExhaustedError("XML document of " + std::to_string(xml.size()) + " bytes exceeds the limit of " +
                                    std::to_string(options_.max_size) + " bytes");
    }
    std::unique_ptr<XML_ParserStruct, void (*)(XML_Parser)> parser(XML_ParserCreateNS(nullptr, kNsSeparator),
                                                                   XML_ParserFree);
    if (parser == nullptr) return InternalError("cannot create an XML parser");
    parser_ = parser.get();
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, &TreeBuilder::OnStart, &TreeBuilder::OnEnd);
    XML_SetCharacterDataHandler(parser_, &TreeBuilder::OnText);
    XML_SetStartDoctypeDeclHandler(parser_, &TreeBuilder::OnDoctype);
    XML_Status status = XML_Parse(parser_, xml.data(), static_cast<int>(xml.size()), XML_TRUE);
    if (!error_.ok()) return error_;
    if (status != XML_STATUS_OK) {
      return InvalidArgumentError("XML error at " +
                                  Position(XML_GetCurrentLineNumber(parser_), XML_GetCurrentColumnNumber(parser_) + 1) +
                                  ": " + XML_ErrorString(XML_GetErrorCode(parser_)));
    }
    if (root_ == nullptr) return InvalidArgumentError("XML error: no root element");
    return std::move(root_);
  }

 private:
  static void XMLCALL OnStart(void* data, const XML_Char* name, const XML_Char** attributes) {
    auto* self = static_cast<TreeBuilder*>(data);
    if (self->stack_.size() >= self->options_.max_depth) {
      self->Fail(ResourceExhaustedError("XML error at " + self->Here() + ": elements nested deeper than " +
                                        std::to_string(self->options_.max_depth)));
      return;
    }
    auto element = std::make_unique<XmlElement>();
    SplitName(name, element->ns, element->name);
    element->line = static_cast<uint32_t>(XML_GetCurrentLineNumber(self->parser_));
    element->column = static_cast<uint32_t>(XML_GetCurrentColumnNumber(self->parser_) + 1);
    for (const XML_Char** a = attributes; a[0] != nullptr; a += 2) {
      XmlAttribute attribute;
      SplitName(a[0], attribute.ns, attribute.name);
      attribute.value = a[1];
      element->attributes.push_back(std::move(attribute));
    }
    XmlElement* raw = element.get();
    if (self->stack_.empty()) {
      self->root_ = std::move(element);
    } else {
      self->stack_.back()->content.push_back(XmlContent{std::move(element), {}});
    }
    self->stack_.push_back(raw);
  }

  static void XMLCALL OnEnd(void* data, const XML_Char* /*name*/) {
    auto* self = static_cast<TreeBuilder*>(data);
    if (!self->stack_.empty()) self->stack_.pop_back();
  }

  static void XMLCALL OnText(void* data, const XML_Char* s, int len) {
    auto* self = static_cast<TreeBuilder*>(data);
    if (self->stack_.empty() || len <= 0) return;
    std::vector<XmlContent>& content = self->stack_.back()->content;
    if (content.empty() || content.back().element != nullptr) content.push_back(XmlContent{});
    content.back().text.append(s, static_cast<size_t>(len));
  }

  static void XMLCALL OnDoctype(void* data, const XML_Char* /*name*/, const XML_Char* /*sysid*/,
                                const XML_Char* /*pubid*/, int /*has_internal_subset*/) {
    auto* self = static_cast<TreeBuilder*>(data);
    self->Fail(InvalidArgumentError("XML error at " + self->Here() + ": DOCTYPE declarations are not allowed"));
  }

  std::string Here() const {
    return Position(XML_GetCurrentLineNumber(parser_), XML_GetCurrentColumnNumber(parser_) + 1);
  }

  void Fail(Status status) {
    if (error_.ok()) error_ = std::move(status);
    XML_StopParser(parser_, XML_FALSE);
  }

  const XmlOptions& options_;
  XML_Parser parser_ = nullptr;
  std::unique_ptr<XmlElement> root_;
  std::vector<XmlElement*> stack_;
  Status error_;
};

// --- XHTML serialisation ---------------------------------------------------

void AppendEscaped(std::string_view s, bool attribute, std::string& out) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"':
        if (attribute) {
          out += "&quot;";
        } else {
          out += c;
        }
        break;
      case '\n':
        if (attribute) {
          out += "&#10;";
        } else {
          out += c;
        }
        break;
      case '\t':
        if (attribute) {
          out += "&#9;";
        } else {
          out += c;
        }
        break;
      case '\r': out += "&#13;"; break;
      default: out += c;
    }
  }
}

void WriteXhtml(const XmlElement& e, std::string_view default_ns, bool root, std::string& out) {
  out += '<';
  out += e.name;
  if (root || e.ns != default_ns) {
    out += " xmlns=\"";
    AppendEscaped(e.ns, true, out);
    out += '"';
  }
  // Attributes in other namespaces get generated prefixes declared here.
  std::vector<std::string_view> declared;
  for (const XmlAttribute& a : e.attributes) {
    out += ' ';
    if (a.ns == kXmlNamespace) {
      out += "xml:";
    } else if (!a.ns.empty()) {
      size_t n = 0;
      while (n < declared.size() && declared[n] != a.ns) ++n;
      std::string prefix = "ns" + std::to_string(n + 1);
      if (n == declared.size()) {
        declared.push_back(a.ns);
        out += "xmlns:" + prefix + "=\"";
        AppendEscaped(a.ns, true, out);
        out += "\" ";
      }
      out += prefix + ":";
    }
    out += a.name;
    out += "=\"";
    AppendEscaped(a.value, true, out);
    out += '"';
  }
  if (e.content.empty()) {
    out += "/>";
    return;
  }
  out += '>';
  for (const XmlContent& c : e.content) {
    if (c.element != nullptr) {
      WriteXhtml(*c.element, e.ns, false, out);
    } else {
      AppendEscaped(c.text, false, out);
    }
  }
  out += "</";
  out += e.name;
  out += '>';
}

// --- FHIR conversion -------------------------------------------------------

// Converts FHIR XML elements to JSON values built in a Document.
class Converter {
 public:
  explicit Converter(json::Document& doc)
      : doc_(doc), extension_type_(FindType("Extension")), xhtml_type_(FindType("xhtml")) {}

  Result<json::Value> Resource(const XmlElement& e, std::string& path) {
    if (e.ns != kFhirXmlNamespace) {
      return Error(e, path.empty() ? e.name : path,
                   "a resource must be in the namespace " + std::string(kFhirXmlNamespace) +
                       (e.ns.empty() ? " (no namespace given)" : " (found '" + e.ns + "')"));
    }
    const TypeDef* type = FindResourceType(e.name);
    if (type == nullptr) return Error(e, path.empty() ? e.name : path, "unknown resource type '" + e.name + "'");
    size_t mark = path.size();
    if (path.empty()) path = e.name;
    for (const XmlAttribute& a : e.attributes) {
      // Foreign attributes such as xsi:schemaLocation carry no FHIR content.
      if (a.ns.empty()) return Error(e, path, "unexpected attribute '" + a.name + "' on a resource");
    }
    std::vector<json::Member> members;
    members.push_back({json::Value::StringNoEscapes("resourceType"), doc_.MakeString(e.name)});
    RETURN_IF_ERROR(Members(e, type, path, members));
    path.resize(mark);
    return doc_.MakeObject(members);
  }

 private:
  struct Group {
    const ElementDef* element;
    const TypeDef* type;
    std::string_view json_name;
    std::vector<const XmlElement*> items;
  };

  Status Error(const XmlElement& e, std::string_view path, const std::string& message) const {
    return InvalidArgumentError("FHIR XML error at " + Position(e.line, e.column) + " (" + std::string(path) +
                                "): " + message);
  }

  json::Value Key(std::string_view name) { return doc_.MakeString(name); }

  // In XML, Element.id (outside resources) and Extension.url are attributes.
  bool IsAttributeForm(const TypeDef* type, const ElementDef& element) const {
    return (element.name == "id" && !type->IsResource()) ||
           (element.name == "url" && extension_type_ != nullptr && type->IsA(extension_type_));
  }

  // Appends the JSON members for the child elements of `e`, an object of `type`.
  Status Members(const XmlElement& e, const TypeDef* type, std::string& path, std::vector<json::Member>& out) {
    std::vector<Group> groups;
    for (const XmlContent& c : e.content) {
      if (c.element == nullptr) {
        if (!IsBlank(c.text)) return Error(e, path, "unexpected text content in <" + e.name + ">");
        continue;
      }
      const XmlElement& child = *c.element;
      std::string child_path = path + "." + child.name;
      bool xhtml_ns = child.ns == kXhtmlXmlNamespace;
      if (!xhtml_ns && child.ns != kFhirXmlNamespace) {
        return Error(child, child_path,
                     "element '" + child.name + "' is not in the FHIR namespace" +
                         (child.ns.empty() ? std::string(" (no namespace)") : " (found '" + child.ns + "')"));
      }
      const TypeRef* choice = nullptr;
      const ElementDef* element = type->FindElement(child.name, &choice);
      if (element == nullptr || element->types.empty()) {
        return Error(child, child_path, "unknown element '" + child.name + "' in " + std::string(type->name));
      }
      if (IsAttributeForm(type, *element)) {
        return Error(child, child_path,
                     "'" + child.name + "' is an attribute of <" + e.name + "> in FHIR XML, not an element");
      }
      const TypeDef* child_type = choice != nullptr ? choice->type : element->types[0].type;
      if (xhtml_ns != (child_type == xhtml_type_)) {
        return Error(child, child_path,
                     xhtml_ns
                         ? "'" + child.name + "' must be in the FHIR namespace, not XHTML"
                         : "'" + child.name + "' must be in the XHTML namespace " + std::string(kXhtmlXmlNamespace));
      }
      Group* group = nullptr;
      for (Group& g : groups) {
        if (g.element == element) group = &g;
      }
      if (group == nullptr) {
        groups.push_back({element, child_type, child.name, {}});
        group = &groups.back();
      } else if (group->json_name != child.name) {
        return Error(child, child_path,
                     "only one type of " + std::string(element->name) + "[x] is allowed; found " +
                         std::string(group->json_name) + " and " + child.name);
      }
      group->items.push_back(&child);
    }

    size_t mark = path.size();
    for (const Group& g : groups) {
      path += '.';
      path += g.json_name;
      bool repeats = g.element->max > 1;
      if (!repeats && g.items.size() > 1) {
        return Error(*g.items[1], path,
                     "'" + std::string(g.json_name) + "' occurs " + std::to_string(g.items.size()) +
                         " times but has at most 1 value");
      }
      if (g.type->kind == TypeKind::kPrimitive) {
        RETURN_IF_ERROR(PrimitiveGroup(g, repeats, path, out));
      } else {
        std::vector<json::Value> values;
        for (const XmlElement* item : g.items) {
          json::Value v;
          if (g.type->kind == TypeKind::kResource) {
            ASSIGN_OR_RETURN(v, ResourceWrapper(*item, g.type, path));
          } else {
            ASSIGN_OR_RETURN(v, Complex(*item, g.type, path));
          }
          values.push_back(v);
        }
        out.push_back({Key(g.json_name), repeats ? doc_.MakeArray(values) : values[0]});
      }
      path.resize(mark);
    }
    return Status::Ok();
  }

  Status PrimitiveGroup(const Group& g, bool repeats, std::string& path, std::vector<json::Member>& out) {
    std::vector<json::Value> values;
    std::vector<json::Value> extensions;
    bool any_value = false;
    bool any_extension = false;
    for (const XmlElement* item : g.items) {
      json::Value value;
      json::Value extension;
      bool has_value = false;
      bool has_extension = false;
      if (g.type == xhtml_type_) {
        if (item->name != "div") return Error(*item, path, "a narrative must be a <div>, not <" + item->name + ">");
        value = doc_.MakeString(SerializeXhtml(*item));
        has_value = true;
      } else {
        RETURN_IF_ERROR(Primitive(*item, g.type, path, &value, &has_value, &extension, &has_extension));
      }
      values.push_back(value);
      extensions.push_back(extension);
      any_value |= has_value;
      any_extension |= has_extension;
    }
    std::string ext_name = "_" + std::string(g.json_name);
    if (!repeats) {
      if (any_value) out.push_back({Key(g.json_name), values[0]});
      if (any_extension) out.push_back({Key(ext_name), extensions[0]});
      return Status::Ok();
    }
    if (any_value) out.push_back({Key(g.json_name), doc_.MakeArray(values)});
    if (any_extension) out.push_back({Key(ext_name), doc_.MakeArray(extensions)});
    return Status::Ok();
  }

  Status Primitive(const XmlElement& e, const TypeDef* type, std::string& path, json::Value* value, bool* has_value,
                   json::Value* extension, bool* has_extension) {
    std::vector<json::Member> ext_members;
    const std::string* text = nullptr;
    for (const XmlAttribute& a : e.attributes) {
      if (a.ns.empty() && a.name == "value") {
        text = &a.value;
      } else if (a.ns.empty() && a.name == "id") {
        ext_members.push_back({json::Value::StringNoEscapes("id"), doc_.MakeString(a.value)});
      } else {
        return Error(e, path, "unexpected attribute '" + a.name + "' on <" + e.name + ">");
      }
    }
    RETURN_IF_ERROR(Members(e, type, path, ext_members));
    if (text != nullptr) {
      switch (type->json_kind) {
        case JsonKind::kBoolean:
          if (*text != "true" && *text != "false") {
            return Error(e, path, "a boolean must be 'true' or 'false', not '" + *text + "'");
          }
          *value = json::Value::Bool(*text == "true");
          break;
        case JsonKind::kNumber: {
          Result<json::Value> number = doc_.MakeNumber(*text);
          if (!number.ok()) {
            return Error(e, path, "'" + *text + "' is not a valid " + std::string(type->name));
          }
          *value = *number;
          break;
        }
        case JsonKind::kString:
        case JsonKind::kNone: *value = doc_.MakeString(*text); break;
      }
      *has_value = true;
    }
    if (!ext_members.empty()) {
      *extension = doc_.MakeObject(ext_members);
      *has_extension = true;
    }
    if (!*has_value && !*has_extension) {
      return Error(e, path, "<" + e.name + "> has no value attribute, id or extension");
    }
    return Status::Ok();
  }

  Result<json::Value> Complex(const XmlElement& e, const TypeDef* type, std::string& path) {
    std::vector<json::Member> members;
    bool is_extension = extension_type_ != nullptr && type->IsA(extension_type_);
    for (const XmlAttribute& a : e.attributes) {
      if (a.ns.empty() && a.name == "id") {
        members.push_back({json::Value::StringNoEscapes("id"), doc_.MakeString(a.value)});
      } else if (a.ns.empty() && a.name == "url" && is_extension) {
        members.push_back({json::Value::StringNoEscapes("url"), doc_.MakeString(a.value)});
      } else {
        return Error(e, path, "unexpected attribute '" + a.name + "' on <" + e.name + ">");
      }
    }
    RETURN_IF_ERROR(Members(e, type, path, members));
    return doc_.MakeObject(members);
  }

  // <contained><Patient>...</Patient></contained>
  Result<json::Value> ResourceWrapper(const XmlElement& e, const TypeDef* type, std::string& path) {
    for (const XmlAttribute& a : e.attributes) {
      if (a.ns.empty()) return Error(e, path, "unexpected attribute '" + a.name + "' on <" + e.name + ">");
    }
    const XmlElement* inner = nullptr;
    for (const XmlContent& c : e.content) {
      if (c.element == nullptr) {
        if (!IsBlank(c.text)) return Error(e, path, "unexpected text content in <" + e.name + ">");
        continue;
      }
      if (inner != nullptr) return Error(*c.element, path, "<" + e.name + "> must contain exactly one resource");
      inner = c.element.get();
    }
    if (inner == nullptr) return Error(e, path, "<" + e.name + "> must contain a resource");
    size_t mark = path.size();
    path += '.';
    path += inner->name;
    ASSIGN_OR_RETURN(json::Value v, Resource(*inner, path));
    path.resize(mark);
    const TypeDef* actual = FindResourceType(inner->name);
    if (actual != nullptr && !actual->IsA(type)) {
      return Error(*inner, path,
                   "a " + inner->name + " is not allowed here (expected " + std::string(type->name) + ")");
    }
    return v;
  }

  json::Document& doc_;
  const TypeDef* extension_type_;
  const TypeDef* xhtml_type_;
};

}  // namespace

const std::string* XmlElement::Attribute(std::string_view attribute) const {
  for (const XmlAttribute& a : attributes) {
    if (a.ns.empty() && a.name == attribute) return &a.value;
  }
  return nullptr;
}

std::vector<const XmlElement*> XmlElement::Children(std::string_view child_name) const {
  std::vector<const XmlElement*> out;
  for (const XmlContent& c : content) {
    if (c.element != nullptr && (child_name.empty() || c.element->name == child_name)) out.push_back(c.element.get());
  }
  return out;
}

const XmlElement* XmlElement::FirstChild(std::string_view child_name) const {
  for (const XmlContent& c : content) {
    if (c.element != nullptr && c.element->name == child_name) return c.element.get();
  }
  return nullptr;
}

std::string XmlElement::Text() const {
  std::string out;
  for (const XmlContent& c : content) {
    if (c.element == nullptr) out += c.text;
  }
  return out;
}

Result<std::unique_ptr<XmlElement>> ParseXml(std::string_view xml, const XmlOptions& options) {
  return TreeBuilder(options).Parse(xml);
}

std::string SerializeXhtml(const XmlElement& div) {
  std::string out;
  WriteXhtml(div, {}, true, out);
  return out;
}

Result<json::Value> FhirXmlElementToJson(const XmlElement& resource, json::Document& doc) {
  std::string path;
  return Converter(doc).Resource(resource, path);
}

Result<json::Document> ParseFhirXml(std::string_view xml, const XmlOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<XmlElement> root, ParseXml(xml, options));
  json::Document doc;
  ASSIGN_OR_RETURN(json::Value value, FhirXmlElementToJson(*root, doc));
  doc.set_root(value);
  return doc;
}

Result<std::string> FhirXmlToJson(std::string_view xml, const XmlOptions& options) {
  ASSIGN_OR_RETURN(json::Document doc, ParseFhirXml(xml, options));
  return json::ToString(doc.root());
}

}  // namespace bevan::fhir
