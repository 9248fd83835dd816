#include "rest/importer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/shared_dir.h"

namespace bevan::rest {
namespace {

namespace fs = std::filesystem;

class ImporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore("sqlite::memory:");
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
    dir_ = fs::temp_directory_path() / ("bevan-import-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  std::unique_ptr<store::Store> store_;
  fs::path dir_;
};

TEST_F(ImporterTest, NdjsonWithErrorsLoadsTheValidOnes) {
  std::string f = Write("p.ndjson",
                        "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n"
                        "{\"resourceType\":\"Patient\",\"id\":\"b\",\"birthDate\":\"1970-13-01\"}\n"
                        "\n"
                        "{broken\n"
                        "{\"resourceType\":\"Observation\",\"id\":\"o\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
                        "\"subject\":{\"reference\":\"Patient/a\"}}\n");
  auto s = Import(*store_, {f}, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->loaded, 2u);
  EXPECT_EQ(s->rejected, 2u);
  EXPECT_TRUE(s->bulk);  // an empty store: search indexes built at the end
  ASSERT_EQ(s->errors.size(), 2u);
  EXPECT_EQ(s->errors[0].line + s->errors[1].line, 2u + 4u);
  auto obs = store_->Read("Observation", "o");
  ASSERT_TRUE(obs.ok());
  EXPECT_EQ(obs->compartment, "a");
  EXPECT_FALSE(store_->Read("Patient", "b").ok());
}

TEST_F(ImporterTest, ImportingTwiceChangesNothing) {
  std::string f = Write("p.ndjson", "{\"resourceType\":\"Patient\",\"id\":\"a\",\"active\":true}\n");
  ASSERT_EQ(Import(*store_, {f}, {})->loaded, 1u);
  auto again = Import(*store_, {f}, {});
  EXPECT_FALSE(again->bulk);
  EXPECT_EQ(again->loaded, 0u);
  EXPECT_EQ(again->unchanged, 1u);
  EXPECT_EQ(store_->Read("Patient", "a")->version, 1);
  // Changed content makes a new version.
  Write("p.ndjson", "{\"resourceType\":\"Patient\",\"id\":\"a\",\"active\":false}\n");
  auto changed = Import(*store_, {f}, {});
  EXPECT_EQ(changed->by_type["Patient"].updated, 1u);
  EXPECT_EQ(store_->Read("Patient", "a")->version, 2);
}

TEST_F(ImporterTest, Bundles) {
  std::string collection = Write("c.json", R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource":{"resourceType":"Patient","id":"c1"}},{"resource":{"resourceType":"Patient","id":"c2"}}]})");
  std::string tx = Write("t.json", R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:22222222-2222-4222-8222-222222222222","resource":{"resourceType":"Patient"},
     "request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
      "subject":{"reference":"urn:uuid:22222222-2222-4222-8222-222222222222"}},"request":{"method":"POST","url":"Observation"}}]})");
  auto s = Import(*store_, {collection, tx}, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->rejected, 0u);
  EXPECT_TRUE(store_->Read("Patient", "c2").ok());
  EXPECT_EQ(s->loaded, 4u);
  EXPECT_FALSE(Import(*store_, {(dir_ / "missing.ndjson").string()}, {}).ok());
}

TEST_F(ImporterTest, SyntheaSample) {
  auto shared = SharedDir();
  if (!shared) GTEST_SKIP() << "BEVAN_SHARED (../shared) not found: Synthea import not run";
  auto s = Import(*store_, {*shared + "/data/synthea-10"}, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->rejected, 0u) << (s->errors.empty() ? "" : s->errors[0].outcome);
  EXPECT_EQ(s->loaded, 7160u);
  EXPECT_EQ(s->by_type["Patient"].created, 13u);
  auto again = Import(*store_, {*shared + "/data/synthea-10"}, {});
  EXPECT_EQ(again->unchanged, 7160u);
}

}  // namespace
}  // namespace bevan::rest
