// Bulk Data $export through FhirService::Handle (the routing) and
// BulkExporter::Handle over a real SQLite store: kick-off, poll, manifest,
// download, cancel, parameters, levels, limits and expiry.
#include "rest/export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "json/json.h"
#include "rest/service.h"
#include "rest/time.h"
#include "rest/url.h"

namespace bevan::rest {
namespace {

namespace fs = std::filesystem;

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

http::Request MakeRequest(std::string method, const std::string& target, http::Headers headers) {
  http::Request req;
  req.method = std::move(method);
  req.SetTarget(std::move(target));
  req.headers = std::move(headers);
  return req;
}

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore("sqlite::memory:");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    static int counter = 0;
    dir_ = (fs::temp_directory_path() /
            ("bevan-export-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++)))
               .string();
    Start({});
  }
  void TearDown() override {
    service_.reset();
    exporter_.reset();
    EXPECT_FALSE(fs::exists(dir_) && !fs::is_empty(dir_)) << "job files left behind";
    fs::remove_all(dir_);
  }

  // (Re)creates the exporter and service with `o` (directory and URLs filled in).
  void Start(ExportOptions o) {
    service_.reset();
    exporter_.reset();
    o.directory = dir_;
    o.base_url = "http://test/fhir";
    exporter_ = std::make_unique<BulkExporter>(*store_, o);
    ServiceOptions so;
    so.base_url = "http://test/fhir";
    so.exporter = exporter_.get();
    service_ = std::make_unique<FhirService>(*store_, so);
  }

  http::Response Call(std::string method, const std::string& target, std::string body = "",
                      http::Headers headers = {}) {
    http::Request req = MakeRequest(std::move(method), target, std::move(headers));
    req.body = std::move(body);
    http::Response res;
    service_->Handle(req, res);
    return res;
  }

  static std::string Field(const std::string& text, std::string_view pointer) {
    auto doc = json::Document::Parse(text);
    if (!doc.ok()) return "<not json>";
    auto v = json::ResolvePointer(doc->root(), pointer);
    if (!v.ok() || !*v) return "<missing>";
    return (*v)->is_string() ? std::string((*v)->as_string()) : json::ToString(**v);
  }

  std::string Create(const std::string& type, const std::string& body) {
    auto r = Call("POST", "/fhir/" + type, body, {{"Content-Type", "application/fhir+json"}});
    EXPECT_EQ(r.status, 201) << r.body;
    return Field(r.body, "/id");
  }
  std::string CreatePatient() { return Create("Patient", R"({"resourceType":"Patient","active":true})"); }
  std::string CreateObservation(const std::string& patient, const std::string& category) {
    return Create("Observation", R"({"resourceType":"Observation","status":"final","category":[{"coding":[{"system":)"
                                 R"("http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
                                     category + R"("}]}],"code":{"text":"x"},"subject":{"reference":"Patient/)" +
                                     patient + R"("}})");
  }

  // Kick-off; returns the status URL's path and query (or "" and fails).
  std::string KickOff(const std::string& target) {
    auto r = Call("GET", target, "", {{"Prefer", "respond-async"}, {"Accept", "application/fhir+json"}});
    EXPECT_EQ(r.status, 202) << r.body;
    std::string loc(r.Header("Content-Location"));
    EXPECT_TRUE(loc.starts_with("http://test/fhir/$export-poll-status?_jobId=")) << loc;
    return loc.substr(std::string("http://test").size());
  }

  // Polls until the job is done (bounded: 20 s); returns the manifest.
  std::string WaitForManifest(const std::string& status_url) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = Call("GET", status_url);
      if (r.status == 200) {
        EXPECT_EQ(r.Header("Content-Type"), "application/json");
        return r.body;
      }
      EXPECT_EQ(r.status, 202) << r.body;
      if (r.status != 202) return "";
      EXPECT_FALSE(r.Header("X-Progress").empty());
      EXPECT_EQ(r.Header("Retry-After"), "2");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "export did not finish";
    return "";
  }

  // type -> ids, downloading every output file of the manifest and checking
  // that each line is the stored resource, byte for byte, and the counts.
  std::map<std::string, std::vector<std::string>> Download(const std::string& manifest) {
    std::map<std::string, std::vector<std::string>> out;
    auto doc = json::Document::Parse(manifest);
    EXPECT_TRUE(doc.ok());
    if (!doc.ok()) return out;
    for (const json::Value& o : doc->root().Find("output")->items()) {
      std::string type(o.Find("type")->as_string());
      std::string url(o.Find("url")->as_string());
      auto r = Call("GET", url.substr(std::string("http://test").size()));
      EXPECT_EQ(r.status, 200) << r.body;
      // The file is streamed by the HTTP server: the handler names it.
      EXPECT_TRUE(r.body.empty());
      EXPECT_FALSE(r.body_file.empty()) << url;
      r.body = ReadWhole(r.body_file);
      EXPECT_EQ(r.Header("Content-Type"), "application/fhir+ndjson");
      size_t lines = 0, start = 0;
      while (start < r.body.size()) {
        size_t nl = r.body.find('\n', start);
        std::string line = r.body.substr(start, nl - start);
        start = nl + 1;
        ++lines;
        std::string id = Field(line, "/id");
        EXPECT_EQ(Field(line, "/resourceType"), type);
        auto stored = store_->Read(type, id);
        EXPECT_TRUE(stored.ok());
        if (stored.ok()) {
          EXPECT_EQ(stored->body, line);  // verbatim
        }
        out[type].push_back(id);
      }
      EXPECT_EQ(std::to_string(lines), json::ToString(*o.Find("count"))) << url;
    }
    return out;
  }

  static size_t Count(const std::map<std::string, std::vector<std::string>>& m, const std::string& type) {
    auto it = m.find(type);
    return it == m.end() ? 0 : it->second.size();
  }

  std::unique_ptr<store::Store> store_;
  std::string dir_;
  std::unique_ptr<BulkExporter> exporter_;
  std::unique_ptr<FhirService> service_;
};

TEST_F(ExportTest, SystemExportKickOffPollManifestDownload) {
  std::string p1 = CreatePatient(), p2 = CreatePatient();
  CreateObservation(p1, "vital-signs");
  CreateObservation(p2, "laboratory");
  Create("Organization", R"({"resourceType":"Organization","name":"Trust"})");

  std::string status = KickOff("/fhir/$export");
  std::string manifest = WaitForManifest(status);
  EXPECT_EQ(Field(manifest, "/request"), "http://test/fhir/$export");
  EXPECT_EQ(Field(manifest, "/requiresAccessToken"), "false");
  EXPECT_TRUE(ParseDateTimeRange(Field(manifest, "/transactionTime"))) << manifest;
  EXPECT_EQ(Field(manifest, "/error"), "[]");
  auto got = Download(manifest);
  EXPECT_EQ(Count(got, "Patient"), 2u);
  EXPECT_EQ(Count(got, "Observation"), 2u);
  EXPECT_EQ(Count(got, "Organization"), 1u);
  EXPECT_EQ(got.size(), 3u);  // no files for empty types
  // The status stays available until it expires or is deleted.
  EXPECT_EQ(Call("GET", status).status, 200);
  // DELETE removes the job and its files.
  EXPECT_EQ(Call("DELETE", status).status, 202);
  EXPECT_EQ(Call("GET", status).status, 404);
  EXPECT_EQ(exporter_->JobCount(), 0u);
}

TEST_F(ExportTest, PatientAndGroupLevel) {
  std::string p1 = CreatePatient(), p2 = CreatePatient(), p3 = CreatePatient();
  CreateObservation(p1, "vital-signs");
  CreateObservation(p1, "laboratory");
  CreateObservation(p2, "vital-signs");
  CreateObservation(p3, "vital-signs");
  Create("Organization", R"({"resourceType":"Organization","name":"Trust"})");

  auto all = Download(WaitForManifest(KickOff("/fhir/Patient/$export")));
  EXPECT_EQ(Count(all, "Patient"), 3u);
  EXPECT_EQ(Count(all, "Observation"), 4u);
  EXPECT_EQ(Count(all, "Organization"), 0u);  // not in the Patient compartment

  std::string group = Create("Group", R"({"resourceType":"Group","type":"person","actual":true,"member":[)"
                                      R"({"entity":{"reference":"Patient/)" +
                                          p1 + R"("}},{"entity":{"reference":"Patient/)" + p3 +
                                          R"("}},{"entity":{"reference":"Patient/nobody"}}]})");
  std::string manifest = WaitForManifest(KickOff("/fhir/Group/" + group + "/$export"));
  auto members = Download(manifest);
  EXPECT_EQ(Count(members, "Patient"), 2u);
  EXPECT_EQ(Count(members, "Observation"), 3u);
  for (const std::string& id : members["Patient"]) EXPECT_TRUE(id == p1 || id == p3);
  // The member that does not exist is reported in the error file.
  EXPECT_EQ(Field(manifest, "/error/0/type"), "OperationOutcome");
  std::string error_url = Field(manifest, "/error/0/url");
  auto err = Call("GET", error_url.substr(std::string("http://test").size()));
  err.body = ReadWhole(err.body_file);
  EXPECT_EQ(err.status, 200);
  EXPECT_NE(err.body.find("Patient/nobody"), std::string::npos) << err.body;

  auto r = Call("GET", "/fhir/Group/nope/$export", "", {{"Prefer", "respond-async"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Field(r.body, "/resourceType"), "OperationOutcome");
}

TEST_F(ExportTest, TypeSinceAndTypeFilter) {
  std::string p1 = CreatePatient();
  CreateObservation(p1, "vital-signs");
  CreateObservation(p1, "laboratory");
  auto later = Download(WaitForManifest(KickOff("/fhir/$export?_type=Observation")));
  EXPECT_EQ(later.size(), 1u);
  EXPECT_EQ(Count(later, "Observation"), 2u);

  // _since: only what changed after the instant.
  std::string cut = FormatInstant(store_->Now());
  std::string fresh = CreateObservation(p1, "vital-signs");
  auto since = Download(WaitForManifest(KickOff("/fhir/$export?_since=" + PercentEncode(cut))));
  EXPECT_EQ(since.size(), 1u);
  EXPECT_EQ(since["Observation"], std::vector<std::string>{fresh});
  auto since_all = Download(WaitForManifest(KickOff("/fhir/$export?_since=2000-01-01T00:00:00Z")));
  EXPECT_EQ(Count(since_all, "Observation"), 3u);
  auto since_future = Download(WaitForManifest(KickOff("/fhir/$export?_since=2100-01-01T00:00:00Z")));
  EXPECT_TRUE(since_future.empty());

  // _typeFilter: only vital signs among Observations; other types unaffected.
  auto vitals = Download(WaitForManifest(
      KickOff("/fhir/$export?_type=Observation,Patient&_typeFilter=Observation%3Fcategory%3Dvital-signs")));
  EXPECT_EQ(Count(vitals, "Observation"), 2u);
  EXPECT_EQ(Count(vitals, "Patient"), 1u);
  // Two filters for one type are ORed.
  auto both = Download(WaitForManifest(KickOff(
      "/fhir/Patient/$export?_typeFilter=Observation%3Fcategory%3Dvital-signs,Observation%3Fcategory%3Dlaboratory")));
  EXPECT_EQ(Count(both, "Observation"), 3u);
}

TEST_F(ExportTest, BadParametersAre400WithOperationOutcome) {
  ExportOptions o;
  o.max_running_jobs = 3;
  Start(o);
  for (const char* target :
       {"/fhir/$export?_outputFormat=text/csv", "/fhir/$export?_type=Nonsense", "/fhir/$export?_since=yesterday",
        "/fhir/$export?_since=2024-01-01", "/fhir/$export?_typeFilter=Observation%3Fnot-a-param%3D1",
        "/fhir/$export?_typeFilter=nonsense", "/fhir/$export?_elements=id", "/fhir/Patient/$export?_type=Organization",
        "/fhir/$export?_type=Patient&_typeFilter=Observation%3Fstatus%3Dfinal"}) {
    auto r = Call("GET", target, "", {{"Prefer", "respond-async"}});
    EXPECT_EQ(r.status, 400) << target << " " << r.body;
    EXPECT_EQ(Field(r.body, "/resourceType"), "OperationOutcome") << target;
  }
  auto r = Call("GET", "/fhir/$export");  // no Prefer: respond-async
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("respond-async"), std::string::npos);
  for (const char* ok : {"ndjson", "application/ndjson", "application/fhir%2Bndjson"}) {
    auto a = Call("GET", std::string("/fhir/$export?_outputFormat=") + ok, "", {{"Prefer", "respond-async"}});
    EXPECT_EQ(a.status, 202) << ok << " " << a.body;
  }
  EXPECT_EQ(exporter_->JobCount(), 3u);
}

TEST_F(ExportTest, UnknownJobsAndOtherClientsGet404) {
  EXPECT_EQ(Call("GET", "/fhir/$export-poll-status?_jobId=0123456789abcdef").status, 404);
  EXPECT_EQ(Call("DELETE", "/fhir/$export-poll-status?_jobId=0123456789abcdef").status, 404);
  EXPECT_EQ(Call("GET", "/fhir/$export-poll-status").status, 400);
  EXPECT_EQ(Call("GET", "/fhir/$export-file/0123456789abcdef/Patient.ndjson").status, 404);

  CreatePatient();
  http::Request kick = MakeRequest("GET", "/fhir/$export", {{"Prefer", "respond-async"}});
  http::Response res;
  exporter_->Handle(kick, res, "client-a");
  ASSERT_EQ(res.status, 202);
  std::string loc(res.Header("Content-Location"));
  std::string status_url = loc.substr(std::string("http://test").size());
  std::string manifest;
  for (int i = 0; i < 2000 && manifest.empty(); ++i) {
    http::Response poll;
    exporter_->Handle(MakeRequest("GET", status_url, {}), poll, "client-a");
    if (poll.status == 200) manifest = poll.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(manifest.empty());
  std::string file = Field(manifest, "/output/0/url").substr(std::string("http://test").size());
  for (const std::string& target : {status_url, file}) {
    http::Response other;
    exporter_->Handle(MakeRequest("GET", target, {}), other, "client-b");
    EXPECT_EQ(other.status, 404) << target;
    http::Response mine;
    exporter_->Handle(MakeRequest("GET", target, {}), mine, "client-a");
    EXPECT_EQ(mine.status, 200) << target;
  }
  // A file name that is not in the manifest is not served, even inside the job's directory.
  http::Response sneaky;
  exporter_->Handle(MakeRequest("GET", file.substr(0, file.rfind('/')) + "/..%2F..%2Fetc%2Fpasswd", {}), sneaky,
                    "client-a");
  EXPECT_EQ(sneaky.status, 404);
  http::Response del;
  exporter_->Handle(MakeRequest("DELETE", status_url, {}), del, "client-a");
  EXPECT_EQ(del.status, 202);
}

TEST_F(ExportTest, FilesSplitAtTheLimit) {
  ExportOptions o;
  o.max_resources_per_file = 2;
  Start(o);
  std::string p = CreatePatient();
  for (int i = 0; i < 5; ++i) CreateObservation(p, "vital-signs");
  std::string manifest = WaitForManifest(KickOff("/fhir/$export?_type=Observation"));
  EXPECT_EQ(Field(manifest, "/output/0/count"), "2");
  EXPECT_EQ(Field(manifest, "/output/1/count"), "2");
  EXPECT_EQ(Field(manifest, "/output/2/count"), "1");
  EXPECT_TRUE(Field(manifest, "/output/1/url").ends_with("/Observation-2.ndjson"));
  EXPECT_EQ(Count(Download(manifest), "Observation"), 5u);
}

TEST_F(ExportTest, TooManyJobsIs429AndFinishedJobsExpire) {
  ExportOptions o;
  o.max_running_jobs = 1;
  o.max_kept_jobs = 0;
  Start(o);
  CreatePatient();
  std::string status = KickOff("/fhir/$export");
  auto r = Call("GET", "/fhir/$export", "", {{"Prefer", "respond-async"}});
  EXPECT_EQ(r.status, 429);
  EXPECT_FALSE(r.Header("Retry-After").empty());
  WaitForManifest(status);
  EXPECT_EQ(Call("GET", "/fhir/$export", "", {{"Prefer", "respond-async"}}).status, 429);  // still kept

  o.expire_seconds = 0.5;
  Start(o);
  status = KickOff("/fhir/$export");
  WaitForManifest(status);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(Call("GET", status).status, 404);  // expired at the next request
  EXPECT_EQ(exporter_->JobCount(), 0u);
}

TEST_F(ExportTest, WriteExportWritesTypeFilesForTheCli) {
  std::string p = CreatePatient();
  CreateObservation(p, "vital-signs");
  fs::create_directories(dir_ + "/cli");
  ExportSpec spec;
  spec.types = {"Observation", "Patient", "Encounter"};
  WriteExportOptions wo;
  wo.max_resources_per_file = 0;
  int reports = 0;
  wo.progress = [&](const ExportProgress& pr) {
    ++reports;
    EXPECT_EQ(pr.types_total, 3u);
  };
  auto files = WriteExport(*store_, spec, dir_ + "/cli", wo);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].name, "Observation.ndjson");
  EXPECT_EQ((*files)[1].name, "Patient.ndjson");
  EXPECT_GE(reports, 1);
  EXPECT_TRUE(fs::exists(dir_ + "/cli/Patient.ndjson"));
  EXPECT_FALSE(fs::exists(dir_ + "/cli/Encounter.ndjson"));
  std::atomic<bool> cancel{true};
  wo.cancel = &cancel;
  EXPECT_EQ(WriteExport(*store_, spec, dir_ + "/cli", wo).status().code(), StatusCode::kUnavailable);
  fs::remove_all(dir_ + "/cli");
}

}  // namespace
}  // namespace bevan::rest
