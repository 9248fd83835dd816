#include "explain_command.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <variant>
#include <vector>

#include "search/query.h"
#include "search/search.h"
#include "store/search_sql.h"
#include "store/store.h"

namespace bevan::cli {
namespace {

// A bound value as the sqlite3 shell's `.parameter set` takes it: the shell
// strips one level of quotes from its arguments and evaluates the rest as
// SQL, so a string is an SQL literal inside a double-quoted argument (else
// '8867-4' would be bound as the number 8863).
std::string Literal(const store::PlanValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return std::to_string(*d);
  std::string s = "\"'";
  for (char c : std::get<std::string>(v)) {
    if (c == '\'')
      s += "''";
    else if (c == '"' || c == '\\')
      s += std::string("\\") + c;
    else
      s += c;
  }
  return s + "'\"";
}

}  // namespace

int RunExplain(const ExplainArgs& args) {
  size_t q = args.search.find('?');
  if (q == std::string::npos) {
    std::cerr << "bevan explain: the search must be Type?query or ?query\n";
    return 2;
  }
  auto store = store::OpenStore(args.db);
  if (!store.ok()) {
    std::cerr << "bevan explain: cannot open the store " << args.db << ": " << store.status().message() << "\n";
    return 2;
  }
  if (auto n = search::LoadSearchParameters(**store); !n.ok()) {
    std::cerr << "bevan explain: reading the stored SearchParameters: " << n.status().message() << "\n";
    return 2;
  }
  std::string type = args.search.substr(0, q), query = args.search.substr(q + 1);
  auto parse = [&] { return type.empty() ? search::ParseSystemSearch(query) : search::ParseSearchQuery(type, query); };
  auto parsed = parse();
  if (!parsed.ok()) {
    std::cerr << "bevan explain: " << parsed.status().message() << "\n";
    return 2;
  }
  auto plan = search::BuildPlan(*parsed);
  if (!plan.ok()) {
    std::cerr << "bevan explain: " << plan.status().message() << "\n";
    return 2;
  }
  if (parsed->cursor) {
    auto after = store::SearchCursor::Parse(*parsed->cursor);
    if (!after.ok()) {
      std::cerr << "bevan explain: " << after.status().message() << "\n";
      return 2;
    }
    plan->after = *after;
  }
  auto dialect = args.db.starts_with("sqlite:") ? store::sql::Dialect::kSqlite : store::sql::Dialect::kPostgres;
  std::cout << "plan: " << plan->where.DebugString() << "\n";
  for (const store::SqlStatement& st : store::sql::PrintAll(*plan, dialect)) {
    std::cout << "\n";
    for (size_t i = 0; i < st.params.size(); ++i) {
      std::cout << ".parameter set ?" << i + 1 << " " << Literal(st.params[i]) << "\n";
    }
    std::cout << st.sql << ";\n";
  }
  auto explained = (*store)->ExplainSearch(*plan);
  std::cout << "\n" << (explained.ok() ? *explained : explained.status().ToString()) << "\n";
  if (args.repeat <= 0) return 0;
  std::vector<double> ms;
  size_t matches = 0, included = 0;
  for (int i = 0; i < args.repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto again = parse();
    auto r = again.ok() ? search::ExecuteSearch(**store, *again) : Result<search::SearchResult>(again.status());
    if (!r.ok()) {
      std::cerr << "bevan explain: " << r.status().message() << "\n";
      return 2;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    matches = r->matches.size();
    included = r->included.size();
  }
  std::sort(ms.begin(), ms.end());
  std::cout << matches << " matches, " << included << " included; " << args.repeat << " runs: min " << ms.front()
            << " ms, p50 " << ms[ms.size() / 2] << " ms, max " << ms.back() << " ms\n";
  return 0;
}

}  // namespace bevan::cli
