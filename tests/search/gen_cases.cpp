// Writes the search correctness cases: tests/search/handwritten.cases.json from
// the queries in tests/search/queries.txt, and tests/search/generated.cases.json
// from queries made systematically from the corpus's own values (every indexed
// parameter of every type present, per parameter type: plain values, system|code,
// prefixes, modifiers). The expected result of every case comes from the
// oracle (src/search/oracle.h), never from the store.
//
//   search_gen_cases [OUTPUT_DIR]   (default: $BEVAN_SOURCE_DIR/tests/search)
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "corpus.h"
#include "json/json.h"
#include "search/extract.h"
#include "search/oracle.h"
#include "search/query.h"

namespace bevan::search::testing {
namespace {

struct Case {
  std::string type, query;
};

std::string Day(store::Micros t) {
  std::time_t s = static_cast<std::time_t>(t / 1000000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// Percent-encodes what a query value cannot hold literally.
std::string Enc(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == ':' || c == '|' ||
        c == '\\' || c == ',' || c == '$') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Escapes search-syntax characters in a value.
std::string Esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '|' || c == '$' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Code points [from, from + n) of a UTF-8 string.
std::string Utf8Slice(const std::string& s, size_t from, size_t n) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  if (from >= starts.size()) return {};
  size_t end = from + n < starts.size() ? starts[from + n] : s.size();
  return s.substr(starts[from], end - starts[from]);
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::vector<Case> Generate(const std::vector<CorpusResource>& corpus) {
  // Values by (type, param), in order of frequency then first appearance.
  struct Values {
    std::map<std::string, int> tokens;  // "system|code"
    std::map<std::string, int> strings;
    std::vector<store::Micros> dates;
    std::map<std::string, int> refs;
    std::vector<std::pair<double, std::string>> quantities;  // value, "system|code"
    std::vector<double> numbers;
    std::map<std::string, int> uris;
  };
  std::map<std::pair<std::string, std::string>, Values> values;
  for (const CorpusResource& r : corpus) {
    auto d = json::Document::Parse(r.json);
    if (!d.ok()) continue;
    auto x = Extract(r.type, r.id, d->root());
    if (!x.ok()) continue;
    const store::IndexRows& rows = x->rows;
    auto key = [&](const std::string& p) { return std::make_pair(r.type, p); };
    for (const auto& t : rows.tokens) {
      if (t.param.find_first_of(":$") == std::string::npos) ++values[key(t.param)].tokens[t.system + "|" + t.code];
    }
    for (const auto& s : rows.strings) {
      if (s.param.find_first_of(":$") == std::string::npos) ++values[key(s.param)].strings[s.exact];
    }
    for (const auto& dt : rows.dates) {
      if (dt.param.find('$') == std::string::npos && dt.lo > -1000000000000000000LL) {
        values[key(dt.param)].dates.push_back(dt.lo);
      }
    }
    for (const auto& rf : rows.references) {
      if (rf.param.find('$') != std::string::npos) continue;
      ++values[key(rf.param)].refs[rf.url.empty() ? rf.target_type + "/" + rf.target_id : rf.url];
    }
    for (const auto& q : rows.quantities) {
      if (q.param.find('$') == std::string::npos && q.lo > -1e300) {
        values[key(q.param)].quantities.push_back({(q.lo + q.hi) / 2, q.system + "|" + q.code});
      }
    }
    for (const auto& n : rows.numbers) values[key(n.param)].numbers.push_back((n.lo + n.hi) / 2);
    for (const auto& u : rows.uris) ++values[key(u.param)].uris[u.uri];
  }
  auto top = [](const std::map<std::string, int>& m, size_t n) {
    std::vector<std::pair<int, std::string>> v;
    for (const auto& [k, c] : m) v.push_back({-c, k});
    std::sort(v.begin(), v.end());
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size() && i < n; ++i) out.push_back(v[i].second);
    // And the rarest one.
    if (v.size() > n) out.push_back(v.back().second);
    return out;
  };
  std::vector<Case> cases;
  for (auto& [key, v] : values) {
    const auto& [type, param] = key;
    auto add = [&](const std::string& q) { cases.push_back({type, q}); };
    for (const std::string& t : top(v.tokens, 2)) {
      size_t bar = t.find('|');
      std::string system = t.substr(0, bar), code = t.substr(bar + 1);
      if (code.empty()) continue;
      add(param + "=" + Enc(Esc(code)));
      if (!system.empty()) add(param + "=" + Enc(Esc(system)) + "|" + Enc(Esc(code)));
      if (system.empty()) add(param + "=|" + Enc(Esc(code)));
    }
    if (!v.tokens.empty()) {
      std::string t = top(v.tokens, 1)[0];
      std::string system = t.substr(0, t.find('|'));
      if (!system.empty()) add(param + "=" + Enc(Esc(system)) + "|");
    }
    for (const std::string& s : top(v.strings, 2)) {
      std::string n = Utf8Slice(s, 0, 3);
      if (!n.empty()) add(param + "=" + Enc(Esc(n)));
      add(param + ":exact=" + Enc(Esc(s)));
      if (s.size() > 5) add(param + ":contains=" + Enc(Esc(Utf8Slice(s, 2, 3))));
    }
    if (!v.dates.empty()) {
      std::sort(v.dates.begin(), v.dates.end());
      store::Micros mid = v.dates[v.dates.size() / 2];
      store::Micros low = v.dates[v.dates.size() / 5];
      std::string d = Day(mid);
      add(param + "=" + d);
      add(param + "=ge" + d.substr(0, 7));
      add(param + "=lt" + Day(low).substr(0, 4));
      add(param + "=gt" + Day(low));
      add(param + "=le" + d);
      add(param + "=ne" + d.substr(0, 4));
      add(param + "=sa" + d.substr(0, 7) + "&" + param + "=eb" + Day(v.dates.back()).substr(0, 4));
      add(param + "=ap" + d);
    }
    for (const std::string& r : top(v.refs, 2)) {
      add(param + "=" + Enc(Esc(r)));
      size_t slash = r.find('/');
      if (r.find(':') == std::string::npos && slash != std::string::npos) {
        add(param + "=" + Enc(Esc(r.substr(slash + 1))));
        add(param + ":" + r.substr(0, slash) + "=" + Enc(Esc(r.substr(slash + 1))));
      }
    }
    if (!v.quantities.empty()) {
      std::sort(v.quantities.begin(), v.quantities.end());
      auto [value, unit] = v.quantities[v.quantities.size() / 2];
      add(param + "=" + Num(value));
      add(param + "=gt" + Num(value) + "|" + Enc(Esc(unit.substr(0, unit.find('|')))) + "|" +
          Enc(Esc(unit.substr(unit.find('|') + 1))));
      add(param + "=le" + Num(value) + "||" + Enc(Esc(unit.substr(unit.find('|') + 1))));
      add(param + "=ap" + Num(value));
    }
    if (!v.numbers.empty()) {
      std::sort(v.numbers.begin(), v.numbers.end());
      double n = v.numbers[v.numbers.size() / 2];
      add(param + "=" + Num(n));
      add(param + "=gt" + Num(n));
      add(param + "=lt" + Num(n));
    }
    for (const std::string& u : top(v.uris, 2)) {
      add(param + "=" + Enc(Esc(u)));
      size_t cut = u.rfind('/');
      if (cut != std::string::npos && cut > 8) add(param + ":below=" + Enc(Esc(u.substr(0, cut))));
      add(param + ":above=" + Enc(Esc(u + "/child")));
    }
  }
  return cases;
}

std::vector<Case> ReadQueries(const std::filesystem::path& path) {
  std::vector<Case> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t q = line.find('?');
    out.push_back({line.substr(0, q), q == std::string::npos ? "" : line.substr(q + 1)});
  }
  return out;
}

int Write(const Oracle& oracle, const std::vector<Case>& cases, const std::filesystem::path& path, size_t max_size) {
  std::string out = "[\n";
  int written = 0;
  std::set<std::string> seen;
  for (const Case& c : cases) {
    if (!seen.insert(c.type + "?" + c.query).second) continue;
    // An empty type is a system-level search ("?_type=...").
    auto q = c.type.empty() ? ParseSystemSearch(c.query) : ParseSearchQuery(c.type, c.query);
    if (!q.ok()) {
      std::fprintf(stderr, "skipped %s?%s: %s\n", c.type.c_str(), c.query.c_str(), q.status().ToString().c_str());
      continue;
    }
    if (!q->unknown.empty()) {
      std::fprintf(stderr, "skipped %s?%s: %s\n", c.type.c_str(), c.query.c_str(), q->unknown[0].second.c_str());
      continue;
    }
    auto ids = oracle.Matches(*q);
    if (!ids.ok()) {
      std::fprintf(stderr, "oracle failed on %s?%s\n", c.type.c_str(), c.query.c_str());
      continue;
    }
    if (ids->size() > max_size) continue;
    if (written) out += ",\n";
    out += "{\"resourceType\":";
    json::WriteString(c.type, out);
    out += ",\"query\":";
    json::WriteString(c.query, out);
    out += ",\"expected\":[";
    for (size_t i = 0; i < ids->size(); ++i) {
      if (i) out += ",";
      json::WriteString((*ids)[i], out);
    }
    out += "]";
    if (!q->includes.empty() || !q->revincludes.empty()) {
      auto inc = oracle.Includes(*q, *ids);
      out += ",\"included\":[";
      for (size_t i = 0; inc.ok() && i < inc->size(); ++i) {
        if (i) out += ",";
        json::WriteString((*inc)[i], out);
      }
      out += "]";
    }
    out += "}";
    ++written;
  }
  out += "\n]\n";
  std::ofstream(path) << out;
  return written;
}

int Main(int argc, char** argv) {
  std::filesystem::path dir =
      argc > 1 ? std::filesystem::path(argv[1]) : std::filesystem::path(BEVAN_SOURCE_DIR) / "tests" / "search";
  auto corpus = LoadCorpus();
  if (!corpus.ok()) {
    std::fprintf(stderr, "%s\n", corpus.status().ToString().c_str());
    return 2;
  }
  Oracle oracle;
  for (const CorpusResource& r : *corpus) {
    Status s = oracle.Add(r.json);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 2;
    }
  }
  int hand = Write(oracle, ReadQueries(dir / "queries.txt"), dir / "handwritten.cases.json", 100000);
  int gen = Write(oracle, Generate(*corpus), dir / "generated.cases.json", 300);
  std::printf("%d handwritten and %d generated cases\n", hand, gen);
  return 0;
}

}  // namespace
}  // namespace bevan::search::testing

int main(int argc, char** argv) { return bevan::search::testing::Main(argc, argv); }
