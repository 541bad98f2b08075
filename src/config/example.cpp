// The example file, printed from the declarations: docs/pixserve.example.yaml
// is this text, so its keys, defaults and comments are the components' own.
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace pixserve::config {

namespace {

constexpr std::size_t kTextWidth = 100;     // comment lines of their own
constexpr std::size_t kLineWidth = 120;     // a value with its comment
constexpr std::size_t kCommentColumn = 29;  // where a comment after a value starts (3 spaces after a longer one)

constexpr std::string_view kHeader =
    "pixserve serve --repo REPO --config docs/pixserve.example.yaml\n"
    "\n"
    "Every key is optional: absent keys keep the defaults shown here. Unknown keys and values of the wrong type "
    "are refused with the file, line and key. The command-line flags of pixserve serve (--help names their keys) "
    "override the file.\n"
    "\n"
    "This file is the output of `pixserve config --example`: the keys, defaults and descriptions are declared "
    "next to the code they configure (src/*/settings.cpp), and a unit test keeps the two equal.";

// Words of `text` in lines of at most `width` characters (a longer word
// gets a line of its own).
std::vector<std::string> wrap(std::string_view text, std::size_t width) {
  std::vector<std::string> lines;
  std::istringstream words{std::string(text)};
  std::string line;
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(std::move(line));
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

// `text` as comment lines, paragraphs ('\n') kept.
void comment(std::ostream& out, std::string_view indent, std::string_view text) {
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const auto lines = wrap(text.substr(start, end - start), kTextWidth - indent.size() - 2);
    if (lines.empty()) out << indent << "#\n";
    for (const auto& l : lines) out << indent << "# " << l << '\n';
    start = end + 1;
  }
}

void key_lines(std::ostream& out, const settings::Key<Config>& key, const Config& values) {
  const std::string shown = key.show(values);
  // A key whose value is "not set" shows an example of a value, commented out.
  std::string line = !key.example.empty() && shown == settings::show_text("")
                         ? "  # " + key.name + ": " + key.example
                         : "  " + key.name + ": " + shown;
  const std::size_t column = line.size() < kCommentColumn ? kCommentColumn : line.size() + 3;
  const auto after = column + 2 < kLineWidth ? wrap(key.doc, kLineWidth - column - 2) : std::vector<std::string>{};
  // A description of one or two lines follows the value, a longer one goes above the key.
  if (after.empty() || after.size() > 2) {
    comment(out, "  ", key.doc);
    out << line << '\n';
    return;
  }
  line.resize(column, ' ');
  out << line << "# " << after[0] << '\n';
  if (after.size() > 1) out << std::string(column, ' ') << "# " << after[1] << '\n';
}

}  // namespace

std::string example_yaml() {
  const Config defaults{};
  std::ostringstream out;
  comment(out, "", kHeader);
  for (const auto& section : sections()) {
    out << '\n';
    if (!section.doc.empty()) comment(out, "", section.doc);
    out << section.name << ":\n";
    for (const auto& key : section.keys) key_lines(out, key, defaults);
  }
  return out.str();
}

}  // namespace pixserve::config
