// fuzz_jwt: the access-token layer on untrusted text. Every input is tried
// as
//  - a compact JWS for DecodeJwtHeader and VerifyJwt against a fixed key set
//    (an RS256 and an ES256 key, a fixed clock, issuer and audience);
//  - a JWKS document for KeySet::FromJwksJson: every key it accepts must
//    write a public JWK that Key::FromJwk reads back with the same alg/kid;
//  - a claims object (when it is JSON) signed with the ES256 key and
//    verified, so that the payload checks run behind a valid signature.
// Errors are expected; crashes, sanitizer reports and a token that verifies
// with a wrong alg or kid are not.
//
// The keys below were generated for this target only and sign nothing else;
// fuzz/make-seeds.py reads them from this file to sign the seed tokens.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/jwt.h"
#include "json/json.h"

namespace {

using bevan::auth::Alg;

constexpr std::string_view kEs256Pem = R"(
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGkyrRi9OmK7fV1sD
70IpXG4jXkAWjX/KdXWTZmdQIKKhRANCAAQzseoznpdZYUqajk9hjrsKwHJOet9+
XU8iw0NoZw8v3kjba4dlG7+VhozESVOOXjAHgswnmaS9s46ilYo/xAhC
-----END PRIVATE KEY-----
)";

constexpr std::string_view kRs256Pem = R"(
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCsp+6/0NoY0I0j
fPuPSQRK3jRtEJNXAxlcpSXVT6z+tn3atTc2XYuOvpNU9uFp1Rfo3zjuEEkHR+u5
9qu3+/sznLsrWEegoKqc665BLXKj+2/GAVOBhmDSLVDESISZoUVz1SbkjZkAd/c9
VOYynbcb9Iktg/j9Ljbk0zzGNx6jUOUeWoZqGbVZi3l8GIDJmRVsL/ya892Ud9ME
KOHnGKJEqf1aVZGzG/6bEdSPIws+GeDDPfAaz9LwG/8cTV0g7HsIrczgh0ghzRhl
WkIsgIcEq+ES0ALackIHJVwWAfReQeNkhSvDglrRbV4vdcc+8MrS3Jzrq+PagXwd
FVvLw6ohAgMBAAECggEAUEsw3wezxcKHQK/JFZOxaVf5LZd9zgNk8g7jj1Ykb7hS
wzlvWdsbIeFDB0pg/iTZn7Tf9uaf78DkwXET3tZStmf3K2s8tFjDv4JjYXBPVi+C
haTsPtpNgLEOVJodAI1djUbddYDcXLltw5oODBAIrfmFKiOr0aKCaNxL8SqFFxGs
ufnc9+qjxeQo6m5ePRjkc68JZFuuz1WptQbmPdbsvFOfsWxEJARfQ+IcfQ35ruCh
rN2X/0ye86BFqk9s2ze47lfLyboEOHIOPsFjxBxjVAHZHmXk4II+rIt/yQHApQH+
aNp8Z7xb69yUmGhy7BUlof0ZvFqraNL8Py0H5fUhOQKBgQDuybfcBP+19l/QVzTI
j9QCZBpeE3wDTCfVP4RtM24ufC3RKO95ibY04o1+9QptHZh50lqMt7BmobiBDlt0
2nwp4bZZrqceSEppOTeske2Ie1LRTxAlp6Tmq1atP+b7UPR1rrWdo8Fcn50EGw7A
VlszpNI8mtx0xAxs3Lu+kajc9wKBgQC5Geaxkehki+igPFSE8VtLeKz4H5L5JoaU
TFbzj8pIFBPZxK0OmcdUOfVfKuZQtcMQlN6Tk3cPtUFleP7u/UYzXfXeqXx2Oxf0
U7vA2T/+wGe3uBDOyBGVoLLYH8GOAJjYG6OH/ZQKrKTa/KgcqKWRnB5EwMn+OC+0
TNrFzhhjpwKBgQC3oqmiqrV8WlyU/Hu7QeDpddJRRuq4HnkDpjVRRZwWY6lYkQKZ
lS5qvU/Tst6xy3DXPs4kKZ+fTf92QHRVCTEzhEGX9pjO0QloongOXqstqqmmDgd8
7dADFQEze1FHNJrLZfCFqsmpUZaO8cAGamL49Gg5815W7e4gSiCYDayvQQKBgCUR
596mDvmb/3Gfw3mAcL0zpMhoYmHdclRe2Ycbw/Ide0BAoDvtVjsrBFYT3F5LmI5I
ki7R+KU/sqIk0kGAnb+J0MTQAqoW+Zwn7NEZcTSOyfbEOTGAZe0masrXyUasHfAh
0OVaRnzAyJ9GvFBJAiegMXupdIqiLAOa5LF6re2/AoGBAND2vvnhXTtpHMm74Gkk
jPY1iiTaE0DJcRaUi4EEMoEKBelXbMFa09R/HAx9tahey+zwAbGgZJnOrEidD2mg
+L4V25BD3DBO4BAFdKdC3/tAwzIkPaeCgEAkqjfTK5+x0WzshFxi7NzC4ZEzgo67
UCqJmRM0Vt08jRybWEfDoYFd
-----END PRIVATE KEY-----
)";

constexpr int64_t kNow = 1700000000;  // 2023-11-14T22:13:20Z; seeds' exp/nbf/iat are around it

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_jwt: %s\n", what.c_str());
  std::abort();
}

struct Fixture {
  bevan::auth::Key es256;
  bevan::auth::KeySet keys;
  bevan::auth::VerifyOptions options;
};

bevan::auth::Key LoadKey(std::string_view pem, Alg alg, std::string kid) {
  auto key = bevan::auth::Key::FromPem(pem, alg, std::move(kid));
  if (!key.ok()) Fail("fixed key does not load: " + key.status().ToString());
  return std::move(key).value();
}

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture{LoadKey(kEs256Pem, Alg::kES256, "fuzz-es256"), {}, {}};
    f->keys.Add(f->es256);
    f->keys.Add(LoadKey(kRs256Pem, Alg::kRS256, "fuzz-rs256"));
    f->options.allowed_algs = {Alg::kRS256, Alg::kRS384, Alg::kES256, Alg::kES384};
    f->options.issuer = "https://issuer.example";
    f->options.audiences = {"https://fuzz/fhir"};
    f->options.now = kNow;
    return f;
  }();
  return *fixture;
}

void CheckVerified(std::string_view token, const bevan::auth::Claims& claims) {
  // A token that verifies names a key of the set whose alg is the header's.
  auto header = bevan::auth::DecodeJwtHeader(token);
  if (!header.ok()) Fail("verified token whose header does not decode");
  auto alg = bevan::auth::ParseAlg(header->alg);
  if (!alg) Fail("verified token with alg " + header->alg);
  const bevan::auth::Key* key = GetFixture().keys.Find(header->kid);
  if (!header->kid.empty() && (!key || key->alg() != *alg)) Fail("verified token with a kid of another alg");
  if (claims.iss != GetFixture().options.issuer) Fail("verified token with iss " + claims.iss);
  auto payload = bevan::json::Document::Parse(claims.payload_json);
  if (!payload.ok() || !payload->root().is_object()) Fail("verified token whose payload is not a JSON object");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bevan;
  if (size > 2 * auth::kMaxTokenBytes) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const Fixture& fixture = GetFixture();

  (void)auth::DecodeJwtHeader(input);
  auto verified = auth::VerifyJwt(input, fixture.keys, fixture.options);
  if (verified.ok()) {
    CheckVerified(input, *verified);
    (void)verified->GetString("scope");
  }

  auto jwks = auth::KeySet::FromJwksJson(input);
  if (jwks.ok()) {
    for (const auth::Key& key : jwks->keys()) {
      std::string jwk = key.PublicJwkJson();
      auto doc = json::Document::Parse(jwk);
      if (!doc.ok()) Fail("PublicJwkJson is not JSON: " + jwk);
      auto again = auth::Key::FromJwk(doc->root());
      if (!again.ok()) Fail("PublicJwkJson does not read back: " + again.status().ToString() + "\n" + jwk);
      if (again->alg() != key.alg() || again->kid() != key.kid()) Fail("PublicJwkJson changes alg or kid: " + jwk);
    }
    (void)jwks->ToJwksJson();
  }

  auto token = auth::SignJwt(fixture.es256, input);
  if (token.ok()) {
    auto claims = auth::VerifyJwt(*token, fixture.keys, fixture.options);
    if (claims.ok()) {
      CheckVerified(*token, *claims);
      if (claims->payload_json != input) Fail("payload not kept verbatim");
    }
  }
  return 0;
}
