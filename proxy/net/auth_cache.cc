#include "proxy/net/auth_cache.h"

#include <random>

namespace corral::net {

CredentialHasher::CredentialHasher() {
  std::random_device rd;
  for (size_t i = 0; i < salt_.size(); i += 4) {
    const uint32_t r = rd();
    std::memcpy(salt_.data() + i, &r, 4);
  }
}

Sha256Digest CredentialHasher::key(bool one_arg, std::string_view user,
                                   std::string_view password) const {
  Sha256 h;
  h.update(std::string_view(reinterpret_cast<const char*>(salt_.data()), salt_.size()));
  if (one_arg) user = {};
  // form, then the user's length (8 bytes, little-endian), the user, the password.
  char head[9];
  head[0] = one_arg ? '1' : '2';
  uint64_t n = user.size();
  for (int i = 0; i < 8; ++i) head[1 + i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  h.update(std::string_view(head, sizeof(head)));
  h.update(user);
  h.update(password);
  return h.finish();
}

VerdictCache::VerdictCache(uint32_t max_entries, int64_t ttl_ms)
    : max_entries_(max_entries == 0 ? 1 : max_entries), ttl_ms_(ttl_ms) {}

bool VerdictCache::cacheable(std::string_view reply) {
  return reply == "+OK\r\n" || reply.starts_with("-WRONGPASS ") ||
         reply.starts_with("-ERR AUTH <password> called without any password configured");
}

bool VerdictCache::find(const Sha256Digest& key, int64_t now_ms, std::string* reply) {
  if (ttl_ms_ <= 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  if (now_ms >= it->second.expires_ms) {
    erase(it);
    return false;
  }
  *reply = it->second.reply;
  return true;
}

void VerdictCache::put(const Sha256Digest& key, std::string_view reply, int64_t now_ms) {
  if (ttl_ms_ <= 0 || !cacheable(reply)) return;
  const bool ok = reply == "+OK\r\n";
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = map_.find(key); it != map_.end()) erase(it);
  std::list<Sha256Digest>& order = order_[ok ? 1 : 0];
  // Expired entries first, then the oldest, until there is room for one more.
  while (!order.empty()) {
    auto oldest = map_.find(order.front());
    if (order.size() < max_entries_ && now_ms < oldest->second.expires_ms) break;
    erase(oldest);
  }
  order.push_back(key);
  Entry& e = map_[key];
  e.reply.assign(reply);
  e.expires_ms = now_ms + ttl_ms_;
  e.ok = ok;
  e.pos = std::prev(order.end());
}

size_t VerdictCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

void VerdictCache::erase(std::unordered_map<Sha256Digest, Entry, DigestHash>::iterator it) {
  order_[it->second.ok ? 1 : 0].erase(it->second.pos);
  map_.erase(it);
}

}  // namespace corral::net
