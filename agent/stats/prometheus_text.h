#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nodemesh::stats {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Builds the Prometheus text exposition format (version 0.0.4): one HELP and
// TYPE line per family, then its samples, label values escaped.
class PrometheusText {
 public:
  // Starts a family; type is "counter", "gauge" or "histogram".
  void Family(std::string_view name, std::string_view type,
              std::string_view help);
  void Sample(std::string_view name, const Labels& labels, double value);
  void Sample(std::string_view name, const Labels& labels, uint64_t value);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

  static std::string EscapeLabelValue(std::string_view v);

 private:
  void SampleName(std::string_view name, const Labels& labels);
  std::string out_;
};

}  // namespace nodemesh::stats
