#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace nodemesh::http {

// One header field line. The views point into whoever owns the bytes (the
// parser's input or head buffer, a connection's copy); see each producer for
// how long they stay valid.
struct HeaderField {
  std::string_view name;
  std::string_view value;
};

// Header fields in wire order, duplicates kept. Lookups are case-insensitive
// and linear: real messages carry a few dozen fields, and a vector reused
// between messages costs no allocation per request.
class HeaderList {
 public:
  using const_iterator = std::vector<HeaderField>::const_iterator;

  void Add(std::string_view name, std::string_view value) {
    fields_.push_back({name, value});
  }
  void Clear() { fields_.clear(); }  // keeps capacity

  // The first field called `name`, if any.
  std::optional<std::string_view> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }
  size_t Count(std::string_view name) const;
  // Whether a comma-separated field (all lines called `name`, e.g.
  // Connection) lists `token`, case-insensitively.
  bool HasToken(std::string_view name, std::string_view token) const;

  std::span<const HeaderField> fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  const HeaderField& operator[](size_t i) const { return fields_[i]; }
  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }

 private:
  std::vector<HeaderField> fields_;
};

// ASCII case-insensitive equality, for field names and tokens. (Debian's
// Abseil has its own string_view type, so absl::EqualsIgnoreCase does not
// take std::string_view.)
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Calls fn(token) for each non-empty element of a comma-separated list
// value, with surrounding whitespace trimmed. Stops early when fn returns
// false.
template <typename Fn>
void ForEachListElement(std::string_view value, Fn fn) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view elem = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view()
                                            : value.substr(comma + 1);
    while (!elem.empty() && (elem.front() == ' ' || elem.front() == '\t')) {
      elem.remove_prefix(1);
    }
    while (!elem.empty() && (elem.back() == ' ' || elem.back() == '\t')) {
      elem.remove_suffix(1);
    }
    if (!elem.empty() && !fn(elem)) return;
  }
}

}  // namespace nodemesh::http
