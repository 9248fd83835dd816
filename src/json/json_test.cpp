#include "json/json.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/shared_dir.h"

namespace bevan::json {
namespace {

Document MustParse(std::string_view text) {
  auto r = Document::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << " for " << text;
  return r.ok() ? std::move(r).value() : Document();
}

std::string ParseError(std::string_view text, const ParseOptions& options = {}, ErrorLocation* where = nullptr) {
  auto r = Document::Parse(text, options, where);
  EXPECT_FALSE(r.ok()) << "parsed but should not: " << text;
  return r.ok() ? "" : r.status().message();
}

TEST(JsonParse, KeepsNumberLiteralsVerbatim) {
  const std::string text =
      R"({"a":1.50,"b":1e2,"c":-0.0,"d":[0,2.0E+3,-12.500e-7],"e":123456789012345678901234567890})";
  Document doc = MustParse(text);
  EXPECT_EQ(doc.root().Find("a")->number_literal(), "1.50");
  EXPECT_EQ(doc.root().Find("b")->number_literal(), "1e2");
  EXPECT_EQ(doc.root().Find("c")->number_literal(), "-0.0");
  EXPECT_EQ(doc.root().Find("d")->items()[2].number_literal(), "-12.500e-7");
  EXPECT_EQ(ToString(doc.root()), text);
  EXPECT_EQ(*doc.root().Find("b")->AsDouble(), 100.0);
  EXPECT_FALSE(doc.root().Find("a")->AsInt64().has_value());
  EXPECT_EQ(*doc.root().Find("d")->items()[0].AsInt64(), 0);
  EXPECT_FALSE(doc.root().Find("e")->AsInt64().has_value());
}

TEST(JsonParse, KeepsKeyOrderAndWhitespaceFreeRoundTrip) {
  const std::string text = R"({"z":1,"a":{"y":[true,false,null],"b":"x"},"m":[],"n":{}})";
  Document doc = MustParse(text);
  auto members = doc.root().members();
  ASSERT_EQ(members.size(), 4u);
  EXPECT_EQ(members[0].name(), "z");
  EXPECT_EQ(members[1].name(), "a");
  EXPECT_EQ(members[3].name(), "n");
  EXPECT_EQ(ToString(doc.root()), text);
}

TEST(JsonParse, AcceptsWhitespaceAndScalarsAtRoot) {
  EXPECT_EQ(ToString(MustParse(" \n{ \"a\" : [ 1 , 2 ] }\n ").root()), R"({"a":[1,2]})");
  EXPECT_EQ(ToString(MustParse("42").root()), "42");
  EXPECT_EQ(ToString(MustParse("\"x\"").root()), "\"x\"");
  EXPECT_EQ(ToString(MustParse("true").root()), "true");
  EXPECT_EQ(ToString(MustParse("null").root()), "null");
}

TEST(JsonParse, StringsAreUnescapedAndSourceEscapingIsKept) {
  const std::string text = R"({"a":"caf\u00e9","b":"line\nbreak \"q\" \\ \/","c":"\ud83d\ude00","d":"\u0001"})";
  Document doc = MustParse(text);
  EXPECT_EQ(doc.root().Find("a")->as_string(), "caf\xC3\xA9");
  EXPECT_EQ(doc.root().Find("b")->as_string(), "line\nbreak \"q\" \\ /");
  EXPECT_EQ(doc.root().Find("c")->as_string(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(doc.root().Find("d")->as_string(), std::string_view("\x01", 1));
  // Byte-for-byte round trip even though \u00e9 and \/ are not how we escape.
  EXPECT_EQ(ToString(doc.root()), text);
  // A canonical escape needs no source copy.
  EXPECT_TRUE(doc.root().Find("d")->raw_escaped().empty());
  EXPECT_FALSE(doc.root().Find("a")->raw_escaped().empty());
}

TEST(JsonParse, EscapedKeys) {
  Document doc = MustParse(R"({"a\"b":1,"\u0063":2})");
  EXPECT_EQ(doc.root().members()[0].name(), "a\"b");
  EXPECT_EQ(doc.root().members()[1].name(), "c");
  EXPECT_EQ(ToString(doc.root()), R"({"a\"b":1,"\u0063":2})");
}

TEST(JsonParse, RejectsDuplicateKeysWithLocation) {
  ErrorLocation where;
  std::string msg = ParseError("{\"id\":\"1\",\n \"id\":\"2\"}", {}, &where);
  EXPECT_NE(msg.find("duplicate key \"id\""), std::string::npos) << msg;
  EXPECT_EQ(where.offset, 12u);
  EXPECT_EQ(where.line, 2u);
  EXPECT_EQ(where.column, 2u);
  EXPECT_NE(msg.find("byte 12 (line 2, column 2)"), std::string::npos) << msg;
  // Many keys take the sorted path.
  std::string big = "{";
  for (int i = 0; i < 40; ++i) big += "\"k" + std::to_string(i) + "\":1,";
  big += "\"k7\":2}";
  EXPECT_NE(ParseError(big).find("duplicate key \"k7\""), std::string::npos);
  // Same key in different objects is fine.
  MustParse(R"({"a":{"id":1},"b":{"id":2}})");
}

TEST(JsonParse, RejectsInvalidUtf8WithOffset) {
  ErrorLocation where;
  std::string msg = ParseError(std::string("{\"a\":\"ok\xff\"}"), {}, &where);
  EXPECT_NE(msg.find("invalid UTF-8"), std::string::npos) << msg;
  EXPECT_EQ(where.offset, 8u);
  ParseError(std::string("\"\xC0\xAF\""));          // overlong '/'
  ParseError(std::string("\"\xED\xA0\x80\""));      // encoded surrogate
  ParseError(std::string("\"\xF4\x90\x80\x80\""));  // above U+10FFFF
  MustParse(std::string("\"\xF4\x8F\xBF\xBF\""));   // U+10FFFF is fine
}

TEST(JsonParse, RejectsBadEscapes) {
  EXPECT_NE(ParseError(R"(["\x"])").find("invalid escape"), std::string::npos);
  EXPECT_NE(ParseError(R"(["\u12"])").find("\\u escape"), std::string::npos);
  EXPECT_NE(ParseError(R"(["\ud800"])").find("surrogate"), std::string::npos);
  EXPECT_NE(ParseError(R"(["\udc00x"])").find("surrogate"), std::string::npos);
  ParseError("[\"a\tb\"]");  // raw control character
}

TEST(JsonParse, RejectsInvalidNumbersAndLiterals) {
  for (const char* bad : {"[01]", "[1.]", "[.5]", "[+1]", "[1e]", "[-]", "[NaN]", "[1.e3]", "[0x10]", "[tru]", "[nul]",
                          "[truex]", "[1 2]"}) {
    ParseError(bad);
  }
}

TEST(JsonParse, RejectsStructuralErrors) {
  for (const char* bad : {"", "   ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "[1]]", "{} {}", "[\"abc"}) {
    ParseError(bad);
  }
}

TEST(JsonParse, EnforcesDepthLimit) {
  ParseOptions options;
  options.max_depth = 4;
  MustParse("[[[[1]]]]");
  ErrorLocation where;
  auto r = Document::Parse("[[[[[1]]]]]", options, &where);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting deeper than the limit of 4"), std::string::npos);
  EXPECT_EQ(where.offset, 4u);
  EXPECT_TRUE(Document::Parse("[[[[1]]]]", options).ok());
  // Deep input with the default limit fails cleanly rather than overflowing the stack.
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  EXPECT_FALSE(Document::Parse(deep).ok());
}

TEST(JsonParse, EnforcesSizeLimit) {
  ParseOptions options;
  options.max_size = 10;
  auto r = Document::Parse(R"({"a":"0123456789"})", options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("over the limit of 10"), std::string::npos);
}

TEST(JsonWrite, Pretty) {
  Document doc = MustParse(R"({"a":[1,{"b":null}],"c":{},"d":[]})");
  EXPECT_EQ(ToString(doc.root(), {.pretty = true}),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {},\n  \"d\": []\n}");
  // Pretty output parses back to an equal value.
  Document again = MustParse(ToString(doc.root(), {.pretty = true}));
  EXPECT_TRUE(again.root() == doc.root());
}

TEST(JsonWrite, EscapesCanonically) {
  std::string out;
  WriteString(std::string_view("a\"b\\c\n\x01/\xC3\xA9", 10), out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001/\xC3\xA9\"");
}

TEST(JsonPointer, Resolves) {
  Document doc = MustParse(R"({"entry":[{"resource":{"id":"p1"}}],"a/b":1,"m~n":2,"":3})");
  auto id = ResolvePointer(doc.root(), "/entry/0/resource/id");
  ASSERT_TRUE(id.ok());
  ASSERT_NE(*id, nullptr);
  EXPECT_EQ((*id)->as_string(), "p1");
  EXPECT_EQ((*ResolvePointer(doc.root(), "/a~1b"))->number_literal(), "1");
  EXPECT_EQ((*ResolvePointer(doc.root(), "/m~0n"))->number_literal(), "2");
  EXPECT_EQ((*ResolvePointer(doc.root(), "/"))->number_literal(), "3");
  EXPECT_EQ(*ResolvePointer(doc.root(), ""), &doc.root());
  EXPECT_EQ(*ResolvePointer(doc.root(), "/entry/1"), nullptr);
  EXPECT_EQ(*ResolvePointer(doc.root(), "/entry/01"), nullptr);
  EXPECT_EQ(*ResolvePointer(doc.root(), "/entry/-"), nullptr);
  EXPECT_EQ(*ResolvePointer(doc.root(), "/nope/x"), nullptr);
  EXPECT_FALSE(ResolvePointer(doc.root(), "entry").ok());
  EXPECT_FALSE(ResolvePointer(doc.root(), "/a~2").ok());
}

TEST(JsonBuild, MembersAndImport) {
  Document doc = MustParse(R"({"resourceType":"Patient","id":"1"})");
  Value v = doc.WithMember(doc.root(), "id", doc.MakeString("2"));
  v = doc.WithMember(v, "active", Value::Bool(true));
  v = doc.WithMember(v, "n", *doc.MakeNumber("1.50"));
  EXPECT_FALSE(doc.MakeNumber("1.").ok());
  EXPECT_EQ(ToString(v), R"({"resourceType":"Patient","id":"2","active":true,"n":1.50})");
  v = doc.WithoutMember(v, "active");
  EXPECT_EQ(ToString(v), R"({"resourceType":"Patient","id":"2","n":1.50})");
  Document other;
  Value copy = other.Import(v);
  doc = Document();  // the original is gone; the copy stays valid
  EXPECT_EQ(ToString(copy), R"({"resourceType":"Patient","id":"2","n":1.50})");
  EXPECT_EQ(ToString(other.MakeInt(-42)), "-42");
}

TEST(JsonUtf8, Validates) {
  size_t bad = 0;
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("ab\x80", &bad));
  EXPECT_EQ(bad, 2u);
  EXPECT_FALSE(IsValidUtf8("\xE2\x82", &bad));
  EXPECT_EQ(bad, 0u);
}

// Every resource of the Synthea sample parses and writes back byte for byte.
TEST(JsonSynthea, RoundTripsByteForByte) {
  auto shared = SharedDir();
  if (!shared) GTEST_SKIP() << "BEVAN_SHARED (../shared) not found: Synthea round trip not run";
  std::string dir = *shared + "/data/synthea-10";
  size_t lines = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    // log.ndjson is the export log (pretty-spaced, not resources).
    if (entry.path().extension() != ".ndjson" || entry.path().filename() == "log.ndjson") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto doc = Document::Parse(line);
      ASSERT_TRUE(doc.ok()) << entry.path() << ": " << doc.status().ToString();
      ASSERT_EQ(ToString(doc->root()), line) << entry.path();
      ++lines;
    }
  }
  EXPECT_GT(lines, 5000u);
}

}  // namespace
}  // namespace bevan::json
