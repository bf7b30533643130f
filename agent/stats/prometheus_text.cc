#include "agent/stats/prometheus_text.h"

#include "absl/strings/str_cat.h"

namespace nodemesh::stats {

void PrometheusText::Family(std::string_view name, std::string_view type,
                            std::string_view help) {
  // absl::string_view is not std::string_view in Debian's abseil build.
  out_.append("# HELP ").append(name).append(" ").append(help);
  out_.append("\n# TYPE ").append(name).append(" ").append(type);
  out_ += '\n';
}

std::string PrometheusText::EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void PrometheusText::SampleName(std::string_view name, const Labels& labels) {
  out_.append(name);
  if (labels.empty()) return;
  out_ += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out_ += ',';
    absl::StrAppend(&out_, labels[i].first, "=\"",
                    EscapeLabelValue(labels[i].second), "\"");
  }
  out_ += '}';
}

void PrometheusText::Sample(std::string_view name, const Labels& labels,
                            double value) {
  SampleName(name, labels);
  absl::StrAppend(&out_, " ", value, "\n");
}

void PrometheusText::Sample(std::string_view name, const Labels& labels,
                            uint64_t value) {
  SampleName(name, labels);
  absl::StrAppend(&out_, " ", value, "\n");
}

}  // namespace nodemesh::stats
