// libFuzzer target for the ADQL parser, printer and translator: any input
// must either translate or raise an AdqlError, never crash, hang or leak;
// accepted queries must round-trip through to_adql. Built by `make fuzz`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "adql/errors.hpp"
#include "adql/geometry_functions.hpp"
#include "adql/parser.hpp"
#include "adql/translator.hpp"
#include "../tests/unit/adql_test_catalog.hpp"

using namespace pixserve::adql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const SimpleCatalog catalog = testing::make_test_catalog();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The geometry text parser sees the same bytes (it reads s_region data).
  try {
    const auto g = geometry::parse(text);
    (void)geometry::area(g);
    (void)geometry::intersects(g, g);
  } catch (const geometry::GeometryError&) {
  }
  Query q;
  try {
    q = parse(text);
  } catch (const ParseError&) {
    return 0;
  }
  const std::string printed = to_adql(q);
  if (!(parse(printed) == q)) std::abort();  // the printer must be faithful
  for (const auto dialect : {pixserve::db::Dialect::sqlite, pixserve::db::Dialect::postgresql}) {
    TranslateOptions o;
    o.dialect = dialect;
    try {
      (void)translate(q, catalog, o);
    } catch (const AdqlError&) {
    }
  }
  return 0;
}
