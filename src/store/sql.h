// The SQL both backends share. Statements use SQLite's numbered parameters
// (?1, ?2, ...); the PostgreSQL backend rewrites them to $1, $2, ... when it
// prepares them. Values always travel as bound parameters, never in the text.
#pragma once

#include <string>
#include <string_view>

namespace bevan::store::sql {

// Which kind of index table, in the order of IndexRows' members.
enum class IndexTable : int { kToken = 0, kString, kDate, kNumber, kQuantity, kReference, kUri };
inline constexpr int kIndexTableCount = 7;

// "DELETE FROM idx_<table> WHERE rid = ?1".
std::string_view DeleteIndexRows(IndexTable table);

// History listings: `level` 0 = system, 1 = type, 2 = instance. Parameters:
// ?1 ?2 ?3 the cursor (rows strictly before it), ?4 lowest and ?5 highest
// last_updated, ?6 the limit, ?7 whether to return bodies, then (levels 1 and
// 2) ?8 the type or the rid, then (when `with_at`) _at's lower end as the next
// parameter, HistoryAtParam(level). Numbered without gaps because PostgreSQL
// cannot type a parameter no statement mentions.
std::string History(int level, bool with_at);
inline int HistoryAtParam(int level) { return level == 0 ? 8 : 9; }

// "?N" -> "$N" for PostgreSQL.
std::string ToPostgres(std::string_view sqlite_sql);

}  // namespace bevan::store::sql
