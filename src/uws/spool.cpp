#include "uws/spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace pixserve::uws {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kOwnerFile = ".owner";

std::string random_suffix() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "host";
  std::string out;
  for (const char c : std::string_view(buf.data())) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_');
  }
  return out.empty() ? std::string("host") : out.substr(0, 64);
}

// Opens and locks `file` without waiting; -1 when another process holds it
// (or it cannot be opened).
int try_lock(const fs::path& file, bool create) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

fs::file_time_type newest_time(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return fs::file_time_type::min();
  if (fs::is_directory(p, ec)) {
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      std::error_code e2;
      const auto u = it->last_write_time(e2);
      if (!e2 && u > t) t = u;
    }
  }
  return t;
}

}  // namespace

// ---------------------------------------------------------------- SpoolDir

SpoolDir::SpoolDir(std::shared_ptr<SpoolArea> area, fs::path dir) : area_(std::move(area)), dir_(std::move(dir)) {}

SpoolDir::~SpoolDir() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) spdlog::warn("spool: could not remove a request folder ({}); the sweep will", ec.message());
  area_->release(dir_.filename().string());
}

// ---------------------------------------------------------------- SpoolArea

std::shared_ptr<SpoolArea> SpoolArea::open(SpoolSettings settings) {
  auto area = std::make_shared<SpoolArea>(Private{}, std::move(settings));
  area->start_sweeper();
  return area;
}

SpoolArea::SpoolArea(Private, SpoolSettings settings) : settings_(std::move(settings)) {
  if (settings_.root.empty()) throw std::invalid_argument("spool: no root folder");
  if (settings_.max_age.count() <= 0 || settings_.sweep_interval.count() <= 0) {
    throw std::invalid_argument("spool: max_age and sweep_interval must be positive");
  }
  fs::create_directories(settings_.root);
  own_ = settings_.root / fmt::format("{}-{}-{}", host_name(), ::getpid(), random_suffix());
  fs::create_directories(own_);
  lock_fd_ = try_lock(own_ / kOwnerFile, true);
  if (lock_fd_ < 0) {
    throw std::runtime_error(fmt::format("spool: cannot lock {}: {}", (own_ / kOwnerFile).string(),
                                         std::strerror(errno)));
  }
  const auto removed = remove_dead_owners();
  if (removed > 0) spdlog::info("spool: removed {} folder(s) left by processes that are gone", removed);
}

SpoolArea::~SpoolArea() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  std::error_code ec;
  fs::remove_all(own_, ec);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void SpoolArea::start_sweeper() {
  sweeper_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stop_cv_.wait_for(lock, settings_.sweep_interval, [this] { return stopping_; })) {
      lock.unlock();
      try {
        const auto removed = sweep();
        if (removed > 0) spdlog::info("spool: the sweep removed {} folder(s)", removed);
      } catch (const std::exception& e) {
        spdlog::warn("spool: sweep failed: {}", e.what());
      }
      lock.lock();
    }
  });
}

std::shared_ptr<SpoolDir> SpoolArea::make() {
  std::string name;
  {
    std::lock_guard lock(mutex_);
    do {
      name = random_suffix();
    } while (live_.contains(name));
    live_.insert(name);  // before the folder exists, so the sweep never sees it unowned
  }
  fs::path dir = own_ / name;
  try {
    fs::create_directories(dir);
  } catch (...) {
    release(name);
    throw;
  }
  return std::shared_ptr<SpoolDir>(new SpoolDir(shared_from_this(), std::move(dir)));
}

void SpoolArea::release(const std::string& name) {
  std::lock_guard lock(mutex_);
  live_.erase(name);
}

std::size_t SpoolArea::remove_dead_owners() {
  std::size_t removed = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(settings_.root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path p = it->path();
    if (p == own_) continue;
    std::error_code e2;
    if (!it->is_directory(e2)) continue;
    const fs::path owner = p / kOwnerFile;
    if (fs::exists(owner, e2)) {
      const int fd = try_lock(owner, false);
      if (fd < 0) continue;  // a live process holds it
      fs::remove_all(p, e2);
      ::close(fd);
      removed += e2 ? 0 : 1;
    } else {
      // A request folder of the layout before process folders (no owner
      // lock): a server of an earlier version may still stream from it, so
      // it goes once it is older than max_age.
      if (fs::file_time_type::clock::now() - newest_time(p) > settings_.max_age) {
        fs::remove_all(p, e2);
        removed += e2 ? 0 : 1;
      }
    }
  }
  return removed;
}

std::size_t SpoolArea::sweep() {
  std::size_t removed = remove_dead_owners();
  const auto now = fs::file_time_type::clock::now();
  std::error_code ec;
  for (auto it = fs::directory_iterator(own_, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path p = it->path();
    const std::string name = p.filename().string();
    if (name == kOwnerFile) continue;
    bool live = false;
    {
      std::lock_guard lock(mutex_);
      live = live_.contains(name);
    }
    if (live && now - newest_time(p) <= settings_.max_age) continue;
    std::error_code e2;
    fs::remove_all(p, e2);
    removed += e2 ? 0 : 1;
  }
  return removed;
}

SpoolUsage SpoolArea::usage() const {
  SpoolUsage u;
  {
    std::lock_guard lock(mutex_);
    u.requests = live_.size();
  }
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(settings_.root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2) || it->path().filename() == kOwnerFile) continue;
    ++u.files;
    u.bytes += it->file_size(e2);
  }
  return u;
}

}  // namespace pixserve::uws
