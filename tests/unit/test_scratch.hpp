// Scratch directories for unit tests. ctest runs every test case as its own
// process, several at once (-j), so a directory per test file is shared by
// concurrent processes and one test's fresh file is "already there" for
// another. Each directory here is named after the running test case and the
// process, so no two running tests ever share one.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace pixserve::testing {

// <PIXSERVE_TEST_TMP>/<Suite>.<Test>.<pid>[/<sub>], created; the same path
// for every call within one test, so fixtures and test bodies agree.
inline std::filesystem::path test_scratch_dir(const std::string& sub = {}) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr ? std::string(info->test_suite_name()) + "." + info->name() : "no-test";
  for (char& c : name)
    if (c == '/') c = '_';  // parameterised tests ("Suite/Param.Name/0")
  auto dir = std::filesystem::path(PIXSERVE_TEST_TMP) / (name + "." + std::to_string(::getpid()));
  if (!sub.empty()) dir /= sub;
  std::filesystem::create_directories(dir);
  return dir;
}

// A file name inside this test's scratch directory.
inline std::filesystem::path test_scratch_file(const std::string& name) { return test_scratch_dir() / name; }

// RAII: an empty per-test directory, removed with everything in it at the end.
struct ScratchDir {
  std::filesystem::path dir;
  explicit ScratchDir(const std::string& sub = {}) : dir(test_scratch_dir(sub)) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace pixserve::testing
