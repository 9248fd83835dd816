#include "json/json.h"
#include "json/json_internal.h"

namespace bevan::json {

namespace {

void WriteStringValue(const Value& v, std::string& out) {
  out += '"';
  std::string_view raw = v.raw_escaped();
  if (!raw.empty()) {
    out.append(raw);
  } else {
    internal::AppendEscaped(v.as_string(), out);
  }
  out += '"';
}

void WriteCompact(const Value& v, std::string& out) {
  switch (v.kind()) {
    case Kind::kNull: out += "null"; return;
    case Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Kind::kNumber: out += v.number_literal(); return;
    case Kind::kString: WriteStringValue(v, out); return;
    case Kind::kArray: {
      out += '[';
      bool first = true;
      for (const Value& item : v.items()) {
        if (!first) out += ',';
        first = false;
        WriteCompact(item, out);
      }
      out += ']';
      return;
    }
    case Kind::kObject: {
      out += '{';
      bool first = true;
      for (const Member& m : v.members()) {
        if (!first) out += ',';
        first = false;
        WriteStringValue(m.key, out);
        out += ':';
        WriteCompact(m.value, out);
      }
      out += '}';
      return;
    }
  }
}

void Indent(std::string& out, int level) {
  out += '\n';
  out.append(static_cast<size_t>(level) * 2, ' ');
}

void WritePretty(const Value& v, std::string& out, int level) {
  switch (v.kind()) {
    case Kind::kArray: {
      if (v.size() == 0) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (const Value& item : v.items()) {
        if (!first) out += ',';
        first = false;
        Indent(out, level + 1);
        WritePretty(item, out, level + 1);
      }
      Indent(out, level);
      out += ']';
      return;
    }
    case Kind::kObject: {
      if (v.size() == 0) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (const Member& m : v.members()) {
        if (!first) out += ',';
        first = false;
        Indent(out, level + 1);
        WriteStringValue(m.key, out);
        out += ": ";
        WritePretty(m.value, out, level + 1);
      }
      Indent(out, level);
      out += '}';
      return;
    }
    default: WriteCompact(v, out);
  }
}

}  // namespace

void Write(const Value& v, std::string& out, const WriteOptions& options) {
  if (options.pretty) {
    WritePretty(v, out, 0);
  } else {
    WriteCompact(v, out);
  }
}

std::string ToString(const Value& v, const WriteOptions& options) {
  std::string out;
  Write(v, out, options);
  return out;
}

void WriteString(std::string_view s, std::string& out) {
  out += '"';
  internal::AppendEscaped(s, out);
  out += '"';
}

}  // namespace bevan::json
