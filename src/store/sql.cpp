#include "store/sql.h"

namespace bevan::store::sql {

std::string_view DeleteIndexRows(IndexTable table) {
  switch (table) {
    case IndexTable::kToken: return "DELETE FROM idx_token WHERE rid = ?1";
    case IndexTable::kString: return "DELETE FROM idx_string WHERE rid = ?1";
    case IndexTable::kDate: return "DELETE FROM idx_date WHERE rid = ?1";
    case IndexTable::kNumber: return "DELETE FROM idx_number WHERE rid = ?1";
    case IndexTable::kQuantity: return "DELETE FROM idx_quantity WHERE rid = ?1";
    case IndexTable::kReference: return "DELETE FROM idx_reference WHERE rid = ?1";
    case IndexTable::kUri: return "DELETE FROM idx_uri WHERE rid = ?1";
  }
  return {};
}

std::string History(int level, bool with_at) {
  std::string s =
      "SELECT h.rid, h.type, r.id, h.version, h.last_updated, h.method, "
      "CASE WHEN ?7 THEN CASE WHEN h.version = r.version THEN r.body ELSE h.body END END, "
      "h.compartment "
      "FROM resource_history h JOIN resource r ON r.rid = h.rid WHERE ";
  if (level == 1) s += "h.type = ?8 AND ";
  if (level == 2) s += "h.rid = ?8 AND ";
  s += "(h.last_updated, h.rid, h.version) < (?1, ?2, ?3) ";
  s += "AND h.last_updated >= ?4 AND h.last_updated <= ?5 ";
  if (with_at) {
    // Current at some instant of [at_lo, at_hi]: written by at_hi (?5) and not
    // superseded by at_lo.
    s += "AND NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.rid = h.rid AND n.version = h.version + 1 "
         "AND n.last_updated <= ?" +
         std::to_string(HistoryAtParam(level)) + ") ";
  }
  if (level == 2) {
    // One resource: its timestamps grow with its versions, so the version
    // alone orders it, through the (rid, version) key.
    s += "ORDER BY h.version DESC LIMIT ?6";
  } else {
    s += "ORDER BY h.last_updated DESC, h.rid DESC, h.version DESC LIMIT ?6";
  }
  return s;
}

std::string ToPostgres(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) out += c == '?' ? '$' : c;
  return out;
}

}  // namespace bevan::store::sql
