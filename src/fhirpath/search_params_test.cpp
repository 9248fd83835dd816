// Every SearchParameter expression of the R4 registry compiles against each
// of its base resource types (the expressions search indexing runs).
#include <gtest/gtest.h>

#include <string>

#include "fhir/model.h"
#include "fhirpath/fhirpath.h"

namespace bevan::fhirpath {
namespace {

TEST(SearchParamsTest, EveryExpressionCompilesForEachBase) {
  int compiled = 0;
  for (const fhir::SearchParamDef& sp : fhir::AllSearchParams()) {
    if (sp.expression.empty()) continue;
    for (std::string_view base : sp.bases) {
      CompileOptions options;
      options.context_type = base;
      auto expr = Expression::Compile(sp.expression, options);
      EXPECT_TRUE(expr.ok()) << sp.url << " on " << base << ": " << expr.status().message();
      ++compiled;
    }
  }
  EXPECT_GT(compiled, 1000);
}

}  // namespace
}  // namespace bevan::fhirpath
