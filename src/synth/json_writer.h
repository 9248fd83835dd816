// A minimal streaming JSON writer for the generator: appends compact JSON to
// a string, placing commas itself. Keys are trusted ASCII names (element
// names from the code); string values are escaped with json::WriteString.
// The caller keeps objects and arrays balanced.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "json/json.h"

namespace bevan::synth {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void BeginObject() {
    Separate();
    out_.push_back('{');
    comma_ = false;
  }
  void EndObject() {
    out_.push_back('}');
    comma_ = true;
  }
  void BeginArray() {
    Separate();
    out_.push_back('[');
    comma_ = false;
  }
  void EndArray() {
    out_.push_back(']');
    comma_ = true;
  }
  // Writes `"key":`; the next call writes its value.
  void Key(std::string_view key) {
    Separate();
    out_.push_back('"');
    out_.append(key);
    out_.append("\":");
    comma_ = false;
  }
  void String(std::string_view s) {
    Separate();
    json::WriteString(s, out_);
    comma_ = true;
  }
  // A string known to need no escaping (codes, ids, dates built here).
  void Plain(std::string_view s) {
    Separate();
    out_.push_back('"');
    out_.append(s);
    out_.push_back('"');
    comma_ = true;
  }
  void Int(int64_t v) {
    Separate();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    comma_ = true;
  }
  // A decimal `scaled` / 10^decimals written with exactly `decimals` places
  // ("37.2", "0.5").
  void Decimal(int64_t scaled, int decimals) {
    Separate();
    if (scaled < 0) {
      out_.push_back('-');
      scaled = -scaled;
    }
    int64_t div = 1;
    for (int i = 0; i < decimals; ++i) div *= 10;
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, scaled / div);
    out_.append(buf, r.ptr);
    if (decimals > 0) {
      out_.push_back('.');
      int64_t frac = scaled % div;
      for (int64_t d = div / 10; d > 0; d /= 10) out_.push_back(static_cast<char>('0' + (frac / d) % 10));
    }
    comma_ = true;
  }
  void Bool(bool v) {
    Separate();
    out_.append(v ? "true" : "false");
    comma_ = true;
  }
  // Appends to a string value being built by hand: opens the quotes. The
  // caller appends unescaped-safe text to out() and calls CloseRaw().
  std::string& OpenRaw() {
    Separate();
    out_.push_back('"');
    return out_;
  }
  void CloseRaw() {
    out_.push_back('"');
    comma_ = true;
  }

  // Starts a new document: the output must have been cleared by the caller.
  void Reset() { comma_ = false; }

  std::string& out() { return out_; }

 private:
  void Separate() {
    if (comma_) out_.push_back(',');
  }
  std::string& out_;
  bool comma_ = false;
};

}  // namespace bevan::synth
