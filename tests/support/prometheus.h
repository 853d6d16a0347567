// Reading a /metrics page the way Prometheus does: with the Prometheus project's own Python
// parser (Debian's python3-prometheus-client), through tests/support/parse_metrics.py.
// Header-only: tests include it where they scrape.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "support/test_support.h"

namespace slipway::testing {

// A page read by the real parser: every family and sample, or why it did not parse.
struct Scrape {
  bool ok = false;
  std::string error;
  nlohmann::json page;  // {"content_type", "families": [{name,type,help}], "samples": [...]}

  // The sum of the samples with this name whose labels include these; 0 when there is none.
  double Value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    double total = 0;
    if (!page.is_object()) return 0;
    for (const auto& s : page["samples"]) {
      if (s["name"] != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) match = match && s["labels"].value(k, "\x01") == v;
      if (match && s["value"].is_number()) total += s["value"].get<double>();
    }
    return total;
  }
};

// url_or_file: "http://127.0.0.1:8081/metrics" or a file holding exposition text.
inline Scrape ParseWithPrometheus(const std::string& url_or_file) {
  Scrape s;
  std::string script = (SourceDir() / "tests/support/parse_metrics.py").string();
  CommandResult r =
      RunCommand("/usr/bin/python3 '" + script + "' '" + url_or_file + "' 2>&1");
  if (r.exit_code != 0) {
    s.error = r.output.empty() ? "the parser failed without a word" : r.output;
    return s;
  }
  s.page = nlohmann::json::parse(r.output, nullptr, false);
  s.ok = s.page.is_object();
  if (!s.ok) s.error = "the parser printed no JSON: " + r.output;
  return s;
}

}  // namespace slipway::testing
