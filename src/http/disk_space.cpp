#include "http/disk_space.hpp"

#include <cerrno>
#include <system_error>

namespace pixserve::http {

bool out_of_space(const std::filesystem::path& dir, int error_number) noexcept {
  if (error_number == ENOSPC || error_number == EDQUOT) return true;
  std::error_code ec;
  auto where = dir;
  // The folder may be gone already (removed with its partial file): ask its
  // nearest existing parent, which is on the same file system.
  while (!where.empty() && !std::filesystem::exists(where, ec)) {
    if (where == where.parent_path()) break;
    where = where.parent_path();
  }
  const auto space = std::filesystem::space(where, ec);
  return !ec && space.available < kLowSpaceBytes;
}

}  // namespace pixserve::http
