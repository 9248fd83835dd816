#include "json/patch.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/shared_dir.h"

namespace bevan::json {
namespace {

Document P(std::string_view text) { return std::move(Document::Parse(text)).value(); }

TEST(JsonPatch, AppliesOperationsAndSharesTheRest) {
  Document doc = P(R"({"a":{"b":[1,2,3]},"c":"x","keep":{"big":[true]}})");
  Document patch = P(R"([{"op":"add","path":"/a/b/1","value":9},{"op":"remove","path":"/c"},
                        {"op":"replace","path":"/a/b/-1x","value":0}])");
  // The third op has a bad index: nothing applies.
  auto bad = ApplyJsonPatch(doc, doc.root(), patch.root());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("operation 2"), std::string::npos) << bad.status().message();
  Document good = P(R"([{"op":"add","path":"/a/b/1","value":9},{"op":"remove","path":"/c"},
                         {"op":"copy","from":"/a/b/0","path":"/a/b/-"},{"op":"test","path":"/a/b/4","value":1.0}])");
  auto r = ApplyJsonPatch(doc, doc.root(), good.root());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(ToString(*r), R"({"a":{"b":[1,9,2,3,1]},"keep":{"big":[true]}})");
  // Untouched subtrees are shared, not copied.
  EXPECT_EQ(r->Find("keep")->items().data(), doc.root().Find("keep")->items().data());
  // The original is unchanged.
  EXPECT_EQ(ToString(doc.root()), R"({"a":{"b":[1,2,3]},"c":"x","keep":{"big":[true]}})");
}

TEST(JsonPatch, PathToFindsNodes) {
  Document doc = P(R"({"name":[{"given":["a","b"]}]})");
  const Value* b = &doc.root().Find("name")->items()[0].Find("given")->items()[1];
  auto path = PathTo(doc.root(), b);
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(*path, (std::vector<std::string>{"name", "0", "given", "1"}));
  Document other = P("[1]");
  EXPECT_FALSE(PathTo(doc.root(), &other.root()).has_value());
}

// The JSON Patch tests of ../shared/conformance/fhir-patch, as published.
TEST(JsonPatch, ConformanceSuite) {
  auto shared = SharedDir();
  if (!shared) GTEST_SKIP() << "BEVAN_SHARED (../shared) not found: JSON Patch suite not run";
  std::ifstream in(*shared + "/conformance/fhir-patch/json-patch-tests.json");
  std::stringstream ss;
  ss << in.rdbuf();
  Document suite = P(ss.str());
  int passed = 0, total = 0;
  for (const Value& t : suite.root().items()) {
    ++total;
    std::string name(t.Find("comment") ? t.Find("comment")->as_string() : "?");
    Document work;
    auto r = ApplyJsonPatch(work, *t.Find("doc"), *t.Find("patch"));
    if (const Value* expected = t.Find("expected")) {
      EXPECT_TRUE(r.ok()) << name << ": " << r.status().message();
      if (r.ok()) {
        EXPECT_TRUE(JsonEquals(*r, *expected)) << name << ": got " << ToString(*r);
        if (JsonEquals(*r, *expected)) ++passed;
      }
    } else {
      EXPECT_FALSE(r.ok()) << name << ": should fail (" << ToString(*t.Find("error")) << ")";
      if (!r.ok()) ++passed;
    }
  }
  std::printf("JSON Patch suite: %d passed, %d failed of %d\n", passed, total - passed, total);
  EXPECT_EQ(total, 16);
}

}  // namespace
}  // namespace bevan::json
