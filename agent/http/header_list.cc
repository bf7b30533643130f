#include "agent/http/header_list.h"

namespace nodemesh::http {

std::optional<std::string_view> HeaderList::Get(std::string_view name) const {
  for (const HeaderField& f : fields_) {
    if (EqualsIgnoreCase(f.name, name)) return f.value;
  }
  return std::nullopt;
}

size_t HeaderList::Count(std::string_view name) const {
  size_t n = 0;
  for (const HeaderField& f : fields_) {
    if (EqualsIgnoreCase(f.name, name)) ++n;
  }
  return n;
}

bool HeaderList::HasToken(std::string_view name, std::string_view token) const {
  bool found = false;
  for (const HeaderField& f : fields_) {
    if (!EqualsIgnoreCase(f.name, name)) continue;
    ForEachListElement(f.value, [&](std::string_view elem) {
      found = EqualsIgnoreCase(elem, token);
      return !found;
    });
    if (found) return true;
  }
  return false;
}

}  // namespace nodemesh::http
