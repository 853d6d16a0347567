// slipway's OpenAPI contract diff against oasdiff, the field's reference tool, run as a peer
// (tests/peers/oasdiff/build.sh builds it from the Go module proxy). On every spec pair of the
// corpus (oasdiff's own test specs, read from its module download, plus the pairs under
// tests/peers/oasdiff/pairs) both tools run; the breaking changes each reports are compared as
// sets of (path, method, kind), restricted to the kinds slipway covers, and precision and recall
// are printed per kind and overall. Both must be at least 0.95.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "ctrl/openapi/diff.h"
#include "support/test_support.h"

namespace slipway::ctrl::openapi {
namespace {

namespace fs = std::filesystem;
using Key = std::tuple<std::string, std::string, std::string>;  // path, method, kind

struct Pair {
  std::string name;
  fs::path base, revision;
};

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  size_t nl = s.rfind('\n');  // build.sh prints progress first, the answer last
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

std::string Quote(const fs::path& p) { return "'" + p.string() + "'"; }

std::vector<Pair> Corpus(const fs::path& oasdiff_data) {
  std::vector<Pair> pairs;
  // oasdiff's checker specs come as <name>_base.yaml and <name>_revision.yaml.
  std::vector<fs::path> bases;
  for (const auto& e : fs::directory_iterator(oasdiff_data / "checker")) {
    std::string f = e.path().filename().string();
    if (f.size() > 10 && f.substr(f.size() - 10) == "_base.yaml") bases.push_back(e.path());
  }
  std::sort(bases.begin(), bases.end());
  for (const auto& b : bases) {
    std::string f = b.filename().string();
    fs::path r = b.parent_path() / (f.substr(0, f.size() - 10) + "_revision.yaml");
    if (fs::exists(r)) pairs.push_back({"oasdiff/checker/" + f.substr(0, f.size() - 10), b, r});
  }
  // Its general specs, each against each.
  for (int a : {1, 2, 3, 5}) {
    for (int b : {1, 2, 3, 5}) {
      if (a == b) continue;
      pairs.push_back({fmt::format("oasdiff/openapi-test{}-{}", a, b),
                       oasdiff_data / fmt::format("openapi-test{}.yaml", a),
                       oasdiff_data / fmt::format("openapi-test{}.yaml", b)});
    }
  }
  // Ours: <name>/base.{yaml,json} and <name>/revision.{yaml,json}.
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(testing::SourceDir() / "tests/peers/oasdiff/pairs")) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    Pair p{"slipway/" + d.filename().string(), {}, {}};
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.path().stem() == "base") p.base = e.path();
      if (e.path().stem() == "revision") p.revision = e.path();
    }
    if (!p.base.empty() && !p.revision.empty()) pairs.push_back(p);
  }
  return pairs;
}

struct Tally {
  int true_positive = 0, false_positive = 0, false_negative = 0;
};

TEST(OpenApiOasdiffAgreement, BreakingChangesAgreeWithOasdiffOnTheCorpus) {
  const fs::path script = testing::SourceDir() / "tests/peers/oasdiff/build.sh";
  testing::CommandResult built = testing::RunCommand(Quote(script) + " build 2>&1");
  ASSERT_EQ(built.exit_code, 0) << "oasdiff could not be built:\n" << built.output;
  const std::string oasdiff = Trimmed(built.output);
  testing::CommandResult specs = testing::RunCommand(Quote(script) + " specs 2>/dev/null");
  ASSERT_EQ(specs.exit_code, 0) << specs.output;
  const fs::path data = Trimmed(specs.output);
  ASSERT_TRUE(fs::is_directory(data / "checker")) << "no oasdiff test specs at " << data;

  const auto& covered_list = CoveredChangeKinds();
  const std::set<std::string> covered(covered_list.begin(), covered_list.end());
  std::vector<Pair> corpus = Corpus(data);
  std::map<std::string, Tally> per_kind;
  Tally total;
  int compared = 0, unreadable = 0, agreeing = 0;
  std::string disagreements;
  for (const Pair& pair : corpus) {
    testing::CommandResult ran =
        testing::RunCommand(fmt::format("{} breaking {} {} --format json 2>/dev/null", oasdiff,
                                        Quote(pair.base), Quote(pair.revision)));
    nlohmann::json theirs_json = nlohmann::json::parse(ran.output, nullptr, false);
    if (ran.exit_code != 0 || !theirs_json.is_array()) {
      ++unreadable;  // oasdiff itself refuses the pair (e.g. a reference to another file)
      continue;
    }
    ++compared;
    std::set<Key> theirs, ours;
    for (const auto& c : theirs_json) {
      std::string kind = c.value("id", "");
      if (covered.count(kind)) theirs.insert({c.value("path", ""), c.value("operation", ""), kind});
    }
    auto diff = DiffOpenApi(testing::ReadFile(pair.base), testing::ReadFile(pair.revision));
    if (diff.ok()) {
      for (const auto& c : diff->changes) {
        if (c.level != ChangeLevel::kInfo && covered.count(c.kind))
          ours.insert({c.path, c.method, c.kind});
      }
    }
    std::string missed, extra;
    for (const Key& k : theirs) {
      if (ours.count(k)) {
        ++total.true_positive;
        ++per_kind[std::get<2>(k)].true_positive;
      } else {
        ++total.false_negative;
        ++per_kind[std::get<2>(k)].false_negative;
        missed +=
            fmt::format("    missed {} {} {}\n", std::get<2>(k), std::get<1>(k), std::get<0>(k));
      }
    }
    for (const Key& k : ours) {
      if (theirs.count(k)) continue;
      ++total.false_positive;
      ++per_kind[std::get<2>(k)].false_positive;
      extra += fmt::format("    extra  {} {} {}\n", std::get<2>(k), std::get<1>(k), std::get<0>(k));
    }
    if (missed.empty() && extra.empty()) {
      ++agreeing;
    } else {
      disagreements +=
          fmt::format("  {}{}\n{}{}", pair.name,
                      diff.ok() ? "" : " (ours: " + diff.status().message() + ")", missed, extra);
    }
  }

  auto ratio = [](int num, int den) { return den == 0 ? 1.0 : static_cast<double>(num) / den; };
  double precision = ratio(total.true_positive, total.true_positive + total.false_positive);
  double recall = ratio(total.true_positive, total.true_positive + total.false_negative);
  std::string table;
  for (const auto& [kind, t] : per_kind) {
    table += fmt::format("  {:<48} agree {:>3}  extra {:>3}  missed {:>3}\n", kind, t.true_positive,
                         t.false_positive, t.false_negative);
  }
  std::cout << fmt::format(
      "oasdiff agreement: {} pairs compared ({} refused by oasdiff), {} agree exactly\n"
      "breaking changes on the {} kinds we cover: {} agree, {} only ours, {} only oasdiff's\n"
      "precision {:.3f}, recall {:.3f}\nper kind:\n{}{}",
      compared, unreadable, agreeing, covered.size(), total.true_positive, total.false_positive,
      total.false_negative, precision, recall, table,
      disagreements.empty() ? "" : "disagreements:\n" + disagreements);
  EXPECT_GE(compared, 50);
  EXPECT_GE(total.true_positive, 50) << "too few breaking changes in the corpus to judge";
  EXPECT_GE(precision, 0.95);
  EXPECT_GE(recall, 0.95);
}

}  // namespace
}  // namespace slipway::ctrl::openapi
