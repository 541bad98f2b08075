// The SODA spool: request folders go with their last holder, folders of
// processes that are gone go when any process opens the spool, a live
// process's folder is never touched by another, and the sweep removes what
// no request holds and what is older than the bound.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "uws/spool.hpp"
#include "test_scratch.hpp"

namespace pixserve {
namespace {

namespace fs = std::filesystem;
using uws::SpoolArea;

void write(const fs::path& file, std::size_t bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << std::string(bytes, 'x');
}

std::size_t entries(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(UwsSpool, RequestFoldersGoWithTheirLastHolder) {
  testing::ScratchDir scratch;
  auto area = SpoolArea::open({.root = scratch.dir / "spool"});
  auto dir = area->make();
  ASSERT_TRUE(fs::is_directory(dir->path()));
  EXPECT_EQ(dir->path().parent_path(), area->own_folder());
  write(dir->path() / "cutouts.fits", 1000);
  auto usage = area->usage();
  EXPECT_EQ(usage.files, 1u);
  EXPECT_EQ(usage.bytes, 1000u);
  EXPECT_EQ(usage.requests, 1u);
  const auto path = dir->path();
  auto other_holder = dir;  // e.g. the streaming response body
  dir.reset();
  EXPECT_TRUE(fs::exists(path));
  other_holder.reset();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(area->usage().files, 0u);
  EXPECT_EQ(area->usage().requests, 0u);
}

TEST(UwsSpool, WhatDeadProcessesLeftIsRemovedAtOpen) {
  testing::ScratchDir scratch;
  const auto root = scratch.dir / "spool";
  // A process folder whose owner lock nobody holds (its process was killed).
  write(root / "host-123-dead" / ".owner", 0);
  write(root / "host-123-dead" / "abc" / "cutouts.fits", 5000);
  // A live one: its lock is held (here by this test, as another replica would).
  write(root / "host-456-live" / ".owner", 0);
  write(root / "host-456-live" / "def" / "cutouts.fits", 5000);
  const int fd = ::open((root / "host-456-live" / ".owner").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  // A request folder of the layout before process folders, a day old.
  write(root / "oldlayout" / "cutouts.fits", 10);
  fs::last_write_time(root / "oldlayout" / "cutouts.fits", fs::file_time_type::clock::now() - std::chrono::hours(25));
  fs::last_write_time(root / "oldlayout", fs::file_time_type::clock::now() - std::chrono::hours(25));

  auto area = SpoolArea::open({.root = root});
  EXPECT_FALSE(fs::exists(root / "host-123-dead"));
  EXPECT_TRUE(fs::exists(root / "host-456-live" / "def" / "cutouts.fits"));
  EXPECT_FALSE(fs::exists(root / "oldlayout"));
  EXPECT_EQ(area->usage().files, 1u);  // the live replica's file

  // Once the other process is gone, the next sweep removes its files too.
  ::close(fd);
  EXPECT_EQ(area->sweep(), 1u);
  EXPECT_FALSE(fs::exists(root / "host-456-live"));
  EXPECT_EQ(area->usage().files, 0u);
}

TEST(UwsSpool, TwoAreasOnOneRootLeaveEachOtherAlone) {
  testing::ScratchDir scratch;
  auto a = SpoolArea::open({.root = scratch.dir / "spool"});
  auto dir = a->make();
  write(dir->path() / "cutouts.fits", 10);
  auto b = SpoolArea::open({.root = scratch.dir / "spool"});
  EXPECT_EQ(b->sweep(), 0u);
  EXPECT_TRUE(fs::exists(dir->path() / "cutouts.fits"));
  EXPECT_NE(a->own_folder(), b->own_folder());
  const auto b_folder = b->own_folder();
  b.reset();
  EXPECT_FALSE(fs::exists(b_folder));  // a process removes its own folder when it stops
  EXPECT_TRUE(fs::exists(dir->path() / "cutouts.fits"));
}

TEST(UwsSpool, TheSweepRemovesUnheldAndTooOldFolders) {
  testing::ScratchDir scratch;
  auto area = SpoolArea::open({.root = scratch.dir / "spool", .max_age = std::chrono::hours(1)});
  // A folder in this process's spool that no request holds (e.g. its
  // removal failed earlier).
  write(area->own_folder() / "orphan" / "cutouts.fits", 10);
  // A held folder, fresh: kept.
  auto fresh = area->make();
  write(fresh->path() / "cutouts.fits", 10);
  // A held folder older than the bound: no response streams that long.
  auto stuck = area->make();
  write(stuck->path() / "cutouts.fits", 10);
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(2);
  fs::last_write_time(stuck->path() / "cutouts.fits", old);
  fs::last_write_time(stuck->path(), old);
  EXPECT_EQ(area->sweep(), 2u);
  EXPECT_FALSE(fs::exists(area->own_folder() / "orphan"));
  EXPECT_FALSE(fs::exists(stuck->path()));
  EXPECT_TRUE(fs::exists(fresh->path() / "cutouts.fits"));
  EXPECT_EQ(entries(area->own_folder()), 2u);  // .owner and the fresh request
}

TEST(UwsSpool, BadSettingsAreRefused) {
  testing::ScratchDir scratch;
  EXPECT_THROW(SpoolArea::open({.root = {}}), std::invalid_argument);
  EXPECT_THROW(SpoolArea::open({.root = scratch.dir, .max_age = std::chrono::seconds(0)}), std::invalid_argument);
  write(scratch.dir / "file", 1);
  EXPECT_THROW(SpoolArea::open({.root = scratch.dir / "file"}), std::exception);  // not a folder
}

}  // namespace
}  // namespace pixserve
