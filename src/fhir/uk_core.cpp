#include "fhir/uk_core.h"

namespace bevan::fhir::uk {

int NhsCheckDigit(std::string_view nine) {
  int sum = 0;
  for (int i = 0; i < 9; ++i) sum += (nine[static_cast<size_t>(i)] - '0') * (10 - i);
  int check = 11 - sum % 11;
  if (check == 11) return 0;
  if (check == 10) return -1;
  return check;
}

bool IsValidNhsNumber(std::string_view s) {
  if (s.size() != 10) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  int check = NhsCheckDigit(s.substr(0, 9));
  return check >= 0 && check == s[9] - '0';
}

bool IsValidOdsCode(std::string_view s) {
  if (s.size() < 3 || s.size() > 10) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace bevan::fhir::uk
