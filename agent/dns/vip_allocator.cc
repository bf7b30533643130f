#include "agent/dns/vip_allocator.h"

#include <arpa/inet.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace nodemesh::dns {
namespace {

bool ParseV4(const std::string& text, uint32_t* out) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

}  // namespace

std::string Vip::ToString() const {
  in_addr a{htonl(address)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

absl::StatusOr<VipAllocator> VipAllocator::Create(
    const std::string& cidr, const std::string& state_dir) {
  VipAllocator v;
  size_t slash = cidr.find('/');
  int bits = 0;
  uint32_t base = 0;
  if (slash == std::string::npos || !ParseV4(cidr.substr(0, slash), &base) ||
      !absl::SimpleAtoi(cidr.substr(slash + 1), &bits) || bits < 8 || bits > 30)
    return absl::InvalidArgumentError(absl::StrCat(
        "--service_cidr=", cidr, ": want an IPv4 CIDR from /8 to /30"));
  v.mask_ = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  v.base_ = base & v.mask_;
  v.cidr_ = cidr;
  if ((v.base_ >> 24) != 127)
    LOG(WARNING) << "--service_cidr=" << cidr
                 << " is outside 127.0.0.0/8: a connection that escapes "
                    "redirection would leave the host";
  v.state_file_ = state_dir + "/vips.json";
  if (auto s = v.Load(); !s.ok()) return s;
  return v;
}

absl::Status VipAllocator::Load() {
  std::ifstream in(state_file_);
  if (!in) return absl::OkStatus();
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object() || !j.contains("vips") || !j["vips"].is_object())
    return absl::DataLossError(
        absl::StrCat(state_file_, ": not a VIP table; move it away"));
  for (const auto& [key, e] : j["vips"].items()) {
    uint32_t addr = 0;
    if (!e.is_object() || !ParseV4(e.value("address", ""), &addr) ||
        !e.contains("serviceId") || !e["serviceId"].is_number_unsigned())
      continue;
    if (!InRange(addr)) continue;  // --service_cidr changed: allocate anew
    vips_[key] = Vip{addr, e["serviceId"].get<uint32_t>()};
  }
  IndexKeys();
  return absl::OkStatus();
}

void VipAllocator::IndexKeys() {
  keys_.clear();
  for (const auto& [key, v] : vips_) keys_[v.service_id] = key;
}

absl::Status VipAllocator::Save() const {
  // Written by hand, not through a JSON DOM: with 10,000 services this
  // runs on every change of the set and was a tenth of a recompile.
  std::string text =
      "{\"cidr\": " + nlohmann::json(cidr_).dump() + ",\n \"vips\": {";
  bool first = true;
  for (const auto& [key, v] : vips_) {
    absl::StrAppend(&text, first ? "\n  " : ",\n  ", nlohmann::json(key).dump(),
                    ": {\"address\": \"", v.ToString(),
                    "\", \"serviceId\": ", v.service_id, "}");
    first = false;
  }
  text += "}}\n";
  std::string tmp = state_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return absl::InternalError(absl::StrCat("write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, state_file_, ec);
  if (ec)
    return absl::InternalError(absl::StrCat(state_file_, ": ", ec.message()));
  return absl::OkStatus();
}

bool VipAllocator::Sync(const std::set<std::string>& services) {
  bool missing = false;
  for (const std::string& key : services) {
    if (!vips_.count(key)) {
      missing = true;
      break;
    }
  }
  if (!missing) return false;
  absl::flat_hash_set<uint32_t> used_addr;
  used_addr.reserve(vips_.size() + 1);
  uint32_t max_id = 0;
  for (const auto& [key, v] : vips_) {
    used_addr.insert(v.address);
    max_id = std::max(max_id, v.service_id);
  }
  bool changed = false;
  // Skip the network address and .1 of the range: 127.x.0.1 style addresses
  // are often bound by something already.
  uint32_t size = ~mask_ + 1;
  uint32_t cursor = 2;
  for (const std::string& key : services) {
    if (vips_.count(key)) continue;
    while (cursor < size - 1 && used_addr.count(base_ + cursor)) ++cursor;
    if (cursor >= size - 1) {
      // Out of addresses: reclaim one whose service is gone.
      auto victim = std::find_if(vips_.begin(), vips_.end(), [&](auto& e) {
        return !services.count(e.first);
      });
      if (victim == vips_.end()) {
        LOG(ERROR) << "--service_cidr=" << cidr_ << " is full; " << key
                   << " gets no VIP";
        continue;
      }
      Vip v{victim->second.address, ++max_id};
      vips_.erase(victim);
      vips_[key] = v;
    } else {
      used_addr.insert(base_ + cursor);
      vips_[key] = Vip{base_ + cursor, ++max_id};
    }
    changed = true;
  }
  if (changed) {
    IndexKeys();
    if (auto s = Save(); !s.ok()) LOG(WARNING) << "vips: " << s.message();
  }
  return changed;
}

const std::string* VipAllocator::KeyOf(uint32_t service_id) const {
  auto it = keys_.find(service_id);
  return it == keys_.end() ? nullptr : &it->second;
}

const Vip* VipAllocator::Find(const std::string& key) const {
  auto it = vips_.find(key);
  return it == vips_.end() ? nullptr : &it->second;
}

}  // namespace nodemesh::dns
