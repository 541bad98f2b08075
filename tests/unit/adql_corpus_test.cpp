// The ADQL corpus (adql_corpus.txt next to this file): every valid query
// translates for both dialects, its SQLite SQL prepares against matching
// tables with the user functions registered, and it round-trips through
// to_adql; every invalid query fails with the expected line, column and
// message fragment.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "adql/errors.hpp"
#include "adql/sql_functions.hpp"
#include "adql/translator.hpp"
#include "adql_test_catalog.hpp"

namespace pixserve::adql {
namespace {

struct Entry {
  int file_line = 0;
  bool valid = true;
  int line = 0, column = 0;
  std::string fragment;
  std::string query;
};

std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      if (s[i + 1] == 'n') {
        out += '\n';
        ++i;
        continue;
      }
      if (s[i + 1] == 'x' && i + 3 < s.size()) {
        out += static_cast<char>(std::stoi(s.substr(i + 2, 2), nullptr, 16));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::vector<Entry> load_corpus() {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "adql_corpus.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::vector<Entry> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> parts;
    std::size_t start = 0;
    const std::size_t fields = line.rfind("ok", 0) == 0 ? 2 : 4;
    while (parts.size() + 1 < fields) {
      const std::size_t sep = line.find(" | ", start);
      if (sep == std::string::npos) break;
      parts.push_back(line.substr(start, sep - start));
      start = sep + 3;
    }
    parts.push_back(line.substr(start));
    Entry e;
    e.file_line = n;
    if (parts[0] == "ok" && parts.size() == 2) {
      e.query = unescape(parts[1]);
    } else if (parts[0] == "err" && parts.size() == 4) {
      e.valid = false;
      if (std::sscanf(parts[1].c_str(), "%d:%d", &e.line, &e.column) != 2) e.line = e.column = -1;
      e.fragment = parts[2];
      e.query = unescape(parts[3]);
    } else {
      throw std::runtime_error("adql_corpus.txt line " + std::to_string(n) + " is malformed");
    }
    out.push_back(std::move(e));
  }
  return out;
}

class Db {
 public:
  Db() {
    testing::create_sqlite_schema(*db_, catalog);
    register_functions(*db_);
  }
  std::string prepare_error(const std::string& sql) {
    try {
      db_->prepare(sql);
      return "";
    } catch (const db::DbError& e) {
      return std::string(e.reason());
    }
  }
  SimpleCatalog catalog = testing::make_test_catalog();

 private:
  std::unique_ptr<db::Connection> db_ = db::open_sqlite(":memory:", true);
};

TEST(AdqlCorpus, HasEnoughQueries) {
  const auto corpus = load_corpus();
  int valid = 0, invalid = 0;
  for (const auto& e : corpus) (e.valid ? valid : invalid)++;
  EXPECT_GE(valid + invalid, 200);
  EXPECT_GE(valid, 100);
  EXPECT_GE(invalid, 100);
}

TEST(AdqlCorpus, ValidQueries) {
  Db db;
  for (const auto& e : load_corpus()) {
    if (!e.valid) continue;
    SCOPED_TRACE("adql_corpus.txt:" + std::to_string(e.file_line) + ": " + e.query);
    try {
      TranslateOptions lite;
      const Translation t = translate(e.query, db.catalog, lite);
      EXPECT_EQ(db.prepare_error(t.sql), "") << t.sql;
      EXPECT_FALSE(t.columns.empty());
      TranslateOptions pg;
      pg.dialect = db::Dialect::postgresql;
      EXPECT_FALSE(translate(e.query, db.catalog, pg).sql.empty());
      const Query q = parse(e.query);
      const std::string printed = to_adql(q);
      EXPECT_TRUE(parse(printed) == q) << printed;
      // The normalised text means the same: it translates identically.
      EXPECT_EQ(translate(printed, db.catalog, lite).sql, t.sql);
    } catch (const std::exception& ex) {
      ADD_FAILURE() << ex.what();
    }
  }
}

TEST(AdqlCorpus, InvalidQueries) {
  Db db;
  const bool dump = std::getenv("ADQL_CORPUS_DUMP") != nullptr;
  for (const auto& e : load_corpus()) {
    if (e.valid) continue;
    SCOPED_TRACE("adql_corpus.txt:" + std::to_string(e.file_line) + ": " + e.query);
    try {
      const auto t = translate(e.query, db.catalog);
      ADD_FAILURE() << "translated to " << t.sql;
    } catch (const AdqlError& ex) {
      if (dump) std::cout << "DUMP " << e.file_line << " " << ex.line() << ":" << ex.column() << " " << ex.what() << "\n";
      EXPECT_EQ(ex.line(), e.line) << ex.what();
      EXPECT_EQ(ex.column(), e.column) << ex.what();
      EXPECT_NE(std::string(ex.what()).find(e.fragment), std::string::npos) << ex.what();
    }
  }
}

}  // namespace
}  // namespace pixserve::adql
