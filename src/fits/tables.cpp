// Binary tables of integer columns (File::append_int_table,
// File::read_int_column): the coadds' INPUTS table.
#include "fits/cfitsio.hpp"

namespace pixserve::fits {

void File::append_int_table(std::string_view extname, const std::vector<std::string>& column_names,
                            const std::vector<std::vector<long long>>& columns) {
  fitsfile* f = Handle::writable(handle_, path_, "append_int_table");
  if (column_names.size() != columns.size() || column_names.empty()) {
    throw FitsError(path_, "appending table: need one name per column and at least one column");
  }
  const size_t nrows = columns.front().size();
  for (const auto& c : columns) {
    if (c.size() != nrows) throw FitsError(path_, "appending table: columns differ in length");
  }
  std::vector<char*> ttype, tform;
  std::string k = "1K";  // 64-bit signed integer column
  for (const auto& n : column_names) {
    ttype.push_back(const_cast<char*>(n.c_str()));
    tform.push_back(k.data());
  }
  const std::string name(extname);
  int status = 0;
  fits_create_tbl(f, BINARY_TBL, static_cast<LONGLONG>(nrows), static_cast<int>(columns.size()), ttype.data(),
                  tform.data(), nullptr, name.empty() ? nullptr : name.c_str(), &status);
  check(status, "creating binary table");
  for (size_t c = 0; c < columns.size(); ++c) {
    if (nrows == 0) break;
    std::vector<LONGLONG> data(columns[c].begin(), columns[c].end());
    fits_write_col(f, TLONGLONG, static_cast<int>(c + 1), 1, 1, static_cast<LONGLONG>(nrows), data.data(), &status);
    check(status, fmt::format("writing column {}", column_names[c]));
  }
}

std::vector<long long> File::read_int_column(std::string_view column_name) {
  fitsfile* f = Handle::get(handle_, path_);
  int status = 0, colnum = 0;
  std::string name(column_name);
  fits_get_colnum(f, CASEINSEN, name.data(), &colnum, &status);
  check(status, fmt::format("finding column {}", column_name));
  LONGLONG nrows = 0;
  fits_get_num_rowsll(f, &nrows, &status);
  check(status, "reading table row count");
  std::vector<LONGLONG> data(static_cast<size_t>(nrows));
  int anynul = 0;
  if (nrows > 0) fits_read_col(f, TLONGLONG, colnum, 1, 1, nrows, nullptr, data.data(), &anynul, &status);
  check(status, fmt::format("reading column {}", column_name));
  return {data.begin(), data.end()};
}

}  // namespace pixserve::fits
