// The spool of synchronous runs of a job service (uws/job_service.hpp) that
// write files, e.g. SODA cutouts: each response is written to files in a
// directory of its own and streamed from there (services/soda.hpp says
// why), and nothing may outlive the request that owns it, not even a crash.
//
// Layout under the spool root (SODA's: <repository>/cache/soda-spool by
// default):
//
//   <root>/<host>-<pid>-<random>/          one folder per serving process
//           .owner                         flock()ed by that process for its life
//           <request>/cutouts.fits ...     one folder per request (SpoolDir)
//
// A process folder whose .owner lock can be taken belongs to a process that
// is gone (killed, crashed): its files have no owner and are removed when
// any process opens the spool (so at every restart) and by every sweep.
// Replicas sharing one repository each keep their own folder and never
// touch a live one's. Within a process, a request folder is removed when
// the last holder of its SpoolDir lets go (the response was sent or the
// client went away); the background sweep also removes request folders that
// no SpoolDir holds, and any file older than max_age whatever holds it (no
// response legitimately streams for that long; an open file stays readable
// on POSIX systems after it is unlinked).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace pixserve::uws {

class SpoolArea;

// One request's folder; removed with everything in it when destroyed.
class SpoolDir {
 public:
  SpoolDir(const SpoolDir&) = delete;
  SpoolDir& operator=(const SpoolDir&) = delete;
  ~SpoolDir();
  const std::filesystem::path& path() const noexcept { return dir_; }

 private:
  friend class SpoolArea;
  SpoolDir(std::shared_ptr<SpoolArea> area, std::filesystem::path dir);
  std::shared_ptr<SpoolArea> area_;
  std::filesystem::path dir_;
};

struct SpoolSettings {
  std::filesystem::path root{};
  std::chrono::seconds max_age{std::chrono::hours(24)};          // any spool file older than this goes
  std::chrono::seconds sweep_interval{std::chrono::minutes(10)};  // how often the sweep runs
};

struct SpoolUsage {
  std::size_t files = 0;
  std::uint64_t bytes = 0;
  std::size_t requests = 0;  // request folders of this process in use
};

class SpoolArea : public std::enable_shared_from_this<SpoolArea> {
 public:
  // Creates this process's folder, takes its lock and removes what dead
  // processes left. Starts the background sweep. Throws std::runtime_error
  // when the root cannot be created or locked.
  static std::shared_ptr<SpoolArea> open(SpoolSettings settings);
  ~SpoolArea();
  SpoolArea(const SpoolArea&) = delete;
  SpoolArea& operator=(const SpoolArea&) = delete;

  // A new, empty request folder.
  std::shared_ptr<SpoolDir> make();

  // One pass of the sweep (also run by the background thread); returns the
  // number of folders removed.
  std::size_t sweep();

  // Every spool file under the root (all processes), for /status.
  SpoolUsage usage() const;

  const std::filesystem::path& root() const noexcept { return settings_.root; }
  const std::filesystem::path& own_folder() const noexcept { return own_; }

 private:
  struct Private {};

 public:
  SpoolArea(Private, SpoolSettings settings);

 private:
  friend class SpoolDir;
  void release(const std::string& name);
  void start_sweeper();
  std::size_t remove_dead_owners();

  SpoolSettings settings_;
  std::filesystem::path own_;
  int lock_fd_ = -1;
  mutable std::mutex mutex_;
  std::set<std::string> live_;  // request folders held by a SpoolDir
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace pixserve::uws
