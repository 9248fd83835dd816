// The GET client against bevan's own server on port 0 (plain and TLS with a
// certificate made here), and against a socket that never answers.
#include "http/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "common/ids.h"
#include "http/server.h"

namespace bevan::http {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Server> StartServer(ServerOptions options = {}) {
  options.port = 0;
  options.io_threads = 1;
  auto server = Server::Start(std::move(options), [](const Request& req, Response& res) {
    if (req.path == "/hello") {
      res.status = 200;
      res.SetHeader("Content-Type", "application/json");
      res.SetHeader("X-Query", req.query);
      res.body = R"({"hello":"world"})";
    } else if (req.path == "/big") {
      res.body.assign(2u << 20, 'x');
    } else {
      res.status = 404;
      res.body = "no";
    }
  });
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

std::string Base(const Server& server, bool https = false) {
  return std::string(https ? "https" : "http") + "://127.0.0.1:" + std::to_string(server.port());
}

TEST(ParseUrl, Forms) {
  auto u = ParseUrl("https://idp.example.org/realms/x/.well-known/openid-configuration?a=b#frag");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->host, "idp.example.org");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/realms/x/.well-known/openid-configuration?a=b");

  u = ParseUrl("HTTP://[::1]:8080?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->https);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/?x=1");

  u = ParseUrl("http://example.org");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");

  for (const char* bad : {"ftp://x/", "http://", "http://user:pw@host/", "http://host:/", "http://host:99999/",
                          "http://host:12a/", "http://[::1/", "http://ho st/", "example.org/x"}) {
    EXPECT_EQ(ParseUrl(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(HttpGet, ReturnsStatusHeadersAndBody) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto res = HttpGet(Base(*server) + "/hello?a=1&b=2", 5s);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"({"hello":"world"})");
  EXPECT_EQ(res->Header("content-type"), "application/json");
  EXPECT_EQ(res->Header("X-Query"), "a=1&b=2");

  res = HttpGet(Base(*server) + "/missing", 5s);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->body, "no");
}

TEST(HttpGet, BodyLimit) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto res = HttpGet(Base(*server) + "/big", 5s);
  EXPECT_EQ(res.status().code(), StatusCode::kResourceExhausted) << res.status().ToString();
  ClientOptions options;
  options.max_body_bytes = 4u << 20;
  res = HttpGet(Base(*server) + "/big", options);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->body.size(), 2u << 20);
}

TEST(HttpGet, ConnectionRefused) {
  uint16_t port;
  {
    auto server = StartServer();
    ASSERT_NE(server, nullptr);
    port = server->port();
  }
  auto res = HttpGet("http://127.0.0.1:" + std::to_string(port) + "/", 2s);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
}

TEST(HttpGet, TimesOutOnSilentServer) {
  // Listens (the kernel completes the handshake) but never reads or answers.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto start = std::chrono::steady_clock::now();
  auto res = HttpGet("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/", 300ms);
  auto elapsed = std::chrono::steady_clock::now() - start;
  close(fd);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(res.status().message().find("timed out"), std::string::npos) << res.status().message();
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);
}

// A self-signed certificate for 127.0.0.1 (IP subject alternative name),
// written with its key to a temporary directory.
class SelfSigned {
 public:
  SelfSigned() {
    dir_ = std::filesystem::temp_directory_path() / ("bevan-client-test-" + RandomHex(12));
    std::filesystem::create_directories(dir_);
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("bevan test"), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(cert, bc, -1);
    X509_EXTENSION_free(bc);
    X509_sign(cert, key, EVP_sha256());
    FILE* f = std::fopen(cert_file().c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(key_file().c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~SelfSigned() { std::filesystem::remove_all(dir_); }
  std::string cert_file() const { return (dir_ / "cert.pem").string(); }
  std::string key_file() const { return (dir_ / "key.pem").string(); }

 private:
  std::filesystem::path dir_;
};

TEST(HttpGet, HttpsVerifiesTheCertificate) {
  SelfSigned cert;
  ServerOptions options;
  options.tls_cert_file = cert.cert_file();
  options.tls_key_file = cert.key_file();
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->tls());

  // Not in the system store: refused.
  auto res = HttpGet(Base(*server, true) + "/hello", 5s);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(res.status().message().find("TLS handshake"), std::string::npos) << res.status().message();

  // Trusted explicitly: accepted.
  ClientOptions trusting;
  trusting.ca_file = cert.cert_file();
  res = HttpGet(Base(*server, true) + "/hello", trusting);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"({"hello":"world"})");

  // A body far larger than a TLS record, twice on one server (keep-alive
  // is the client's business; the body must arrive whole each time).
  trusting.max_body_bytes = 4u << 20;
  for (int i = 0; i < 2; ++i) {
    res = HttpGet(Base(*server, true) + "/big", trusting);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->body, std::string(2u << 20, 'x'));
  }

  // Trusted, but the name does not match (the certificate is for 127.0.0.1).
  res = HttpGet("https://localhost:" + std::to_string(server->port()) + "/hello", trusting);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);

  // Plain HTTP to a TLS port is not a response.
  res = HttpGet(Base(*server) + "/hello", 2s);
  EXPECT_FALSE(res.ok());
}

}  // namespace
}  // namespace bevan::http
