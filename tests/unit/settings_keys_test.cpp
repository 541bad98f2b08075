// The key kinds: what each reads, shows and refuses; sections of a member
// struct; checks named by their key.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "settings/settings.hpp"

namespace pixserve::settings {
namespace {

using namespace std::chrono_literals;

struct Inner {
  std::uint64_t bytes = 3u << 20;
  int count = 4;
  friend bool operator==(const Inner&, const Inner&) = default;
};

struct Outer {
  std::string name = "x";
  std::vector<std::string> items{"a", "b c"};
  bool on = false;
  std::chrono::milliseconds wait{2500};
  Inner inner{};
};

Section<Inner> inner_section() {
  return {.name = "inner",
          .doc = {},
          .keys = {integer("mb", &Inner::bytes, {.max = 1024, .min = 1, .shift = 20}, "size"),
                   integer("count", &Inner::count, {.max = 10}, "how many").with_check([](Inner& i) {
                     return i.count % 2 == 0 ? std::string() : "must be even";
                   })}};
}

TEST(SettingsKeys, ReadAndShowEachKind) {
  Outer o;
  const Section<Outer> s{.name = "outer",
                         .doc = {},
                         .keys = {text("name", &Outer::name, "a name"), list("items", &Outer::items, "a list"),
                                  boolean("on", &Outer::on, "a switch"), seconds("wait_s", &Outer::wait, "a wait")}};
  EXPECT_EQ(s.keys[0].show(o), "x");
  EXPECT_EQ(s.keys[1].show(o), "[a, \"b c\"]");
  EXPECT_EQ(s.keys[2].show(o), "false");
  EXPECT_EQ(s.keys[3].show(o), "2.5");
  const std::vector<std::string> one{"true"};
  s.keys[2].read(o, one);
  EXPECT_TRUE(o.on);
  const std::vector<std::string> wait{"0.25"};
  s.keys[3].read(o, wait);
  EXPECT_EQ(o.wait, 250ms);
  const std::vector<std::string> items{"p", "q"};
  s.keys[1].read(o, items);
  EXPECT_EQ(o.items, items);
  EXPECT_EQ(s.keys[1].kind, Kind::list);
}

TEST(SettingsKeys, ParsersRefuseWhatTheFileMustNotSay) {
  EXPECT_EQ(parse_integer("0", 5), 0u);
  EXPECT_EQ(parse_integer("5", 5), 5u);
  for (const char* bad : {"6", "-1", "+1", "1.0", "0x1", "", " 1", "99999999999999999999"}) {
    EXPECT_THROW(parse_integer(bad, 5), ValueError) << bad;
  }
  try {
    parse_integer("6", 5);
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "expected an integer from 0 to 5, got '6'");
  }
  EXPECT_THROW(parse_boolean("yes"), ValueError);
  EXPECT_THROW(parse_boolean("True"), ValueError);
  EXPECT_EQ(parse_seconds("1.5"), 1500ms);
  for (const char* bad : {"0", "-1", "x", "1s", "inf", "nan", "10000001"}) {
    EXPECT_THROW(parse_seconds(bad), ValueError) << bad;
  }
  EXPECT_EQ(show_seconds(604'800'000ms), "604800");
  EXPECT_EQ(show_seconds(1'250ms), "1.25");
}

TEST(SettingsKeys, TextIsQuotedWhenYamlWouldReadItOtherwise) {
  EXPECT_EQ(show_text("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(show_text("https://idp.example.org"), "https://idp.example.org");
  EXPECT_EQ(show_text("data-rights"), "data-rights");
  EXPECT_EQ(show_text(""), "\"\"");
  EXPECT_EQ(show_text("*"), "\"*\"");
  EXPECT_EQ(show_text("null"), "\"null\"");
  EXPECT_EQ(show_text("-x"), "\"-x\"");
  EXPECT_EQ(show_text("a: b"), "\"a: b\"");
  EXPECT_EQ(show_text("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(show_list({}), "[]");
  EXPECT_EQ(show_list({"*"}), "[\"*\"]");
}

TEST(SettingsKeys, SectionsOfAMemberAndTheirChecks) {
  const Section<Outer> lifted = within(&Outer::inner, inner_section());
  Outer o;
  EXPECT_EQ(lifted.name, "inner");
  EXPECT_EQ(lifted.keys[0].show(o), "3");
  const std::vector<std::string> mb{"7"};
  lifted.keys[0].read(o, mb);
  EXPECT_EQ(o.inner.bytes, 7u << 20);
  check(lifted, o);      // 7 MiB, 4: fine
  o.inner.bytes = 1000;  // less than the 1 MiB minimum
  try {
    check(lifted, o);
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "inner.mb: must be at least 1");
  }
  o.inner = Inner{.bytes = 1u << 20, .count = 3};
  EXPECT_THROW(check(lifted, o), ConfigError);
  o.inner.count = 2;
  check(lifted, o);
  Section<Outer> waits{.name = "outer", .doc = {}, .keys = {seconds("wait_s", &Outer::wait, "a wait")}};
  o.wait = 0ms;
  EXPECT_THROW(check(waits, o), ConfigError);  // seconds are positive, however they were set
}

}  // namespace
}  // namespace pixserve::settings
