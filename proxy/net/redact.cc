// CONFIG GET reply redaction: walk the frame once, recording which values to empty, then copy
// the frame with those values replaced. A strict little parser of its own (only the two shapes
// CONFIG GET produces) so that anything unexpected is refused rather than half-understood.
#include "proxy/net/redact.h"

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

namespace corral::net {
namespace {

// Config parameters whose values are credentials. requirepass and masterauth are passwords;
// masteruser names the ACL user of those credentials, hidden as well so a client cannot learn
// which user corral's upstream uses. (Redis also returns tls-key-file-pass and
// tls-client-key-file-pass through CONFIG GET; they are the server's secrets, not corral's.)
constexpr std::array<std::string_view, 5> kSecretNames = {
    "requirepass", "masterauth", "masteruser", "tls-key-file-pass", "tls-client-key-file-pass"};

constexpr std::string_view kEmptyBulk = "$0\r\n\r\n";

// A larger count cannot be a real CONFIG GET reply; the bound also keeps count arithmetic far
// from overflow. Real replies are checked against the bytes present anyway.
constexpr uint64_t kMaxCount = uint64_t{1} << 40;

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;  // b is lowercase
  }
  return true;
}

bool isSecretName(std::string_view name) {
  for (std::string_view s : kSecretNames) {
    if (equalsIgnoreCase(name, s)) return true;
  }
  return false;
}

// Reads a non-negative decimal number ending in "\r\n" at *pos; advances *pos past the CRLF.
// Strict like Redis's own replies: at least one digit, nothing else, no sign.
bool readCount(std::string_view s, size_t* pos, uint64_t* out) {
  size_t i = *pos;
  uint64_t v = 0;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
    if (v > kMaxCount) return false;
    ++i;
    ++digits;
  }
  if (digits == 0 || i + 1 >= s.size() || s[i] != '\r' || s[i + 1] != '\n') return false;
  *pos = i + 2;
  *out = v;
  return true;
}

// Reads one bulk string "$len\r\n<len bytes>\r\n" at *pos. On success *payload views its bytes
// and *pos is just past it.
bool readBulk(std::string_view s, size_t* pos, std::string_view* payload) {
  size_t i = *pos;
  if (i >= s.size() || s[i] != '$') return false;
  ++i;
  uint64_t len = 0;
  if (!readCount(s, &i, &len)) return false;
  // len + 2 fits: len <= kMaxCount. Compare against what is left, so no read goes past the end.
  if (len + 2 > s.size() - i) return false;
  const auto n = static_cast<size_t>(len);
  if (s[i + n] != '\r' || s[i + n + 1] != '\n') return false;
  *payload = s.substr(i, n);
  *pos = i + n + 2;
  return true;
}

}  // namespace

bool redactConfigGetReply(std::string_view reply, std::string& out) {
  if (reply.empty() || (reply[0] != '*' && reply[0] != '%')) return false;
  const bool is_map = reply[0] == '%';
  size_t pos = 1;
  uint64_t count = 0;
  if (!readCount(reply, &pos, &count)) return false;
  uint64_t pairs = count;
  if (!is_map) {
    if (count % 2 != 0) return false;  // name, value, ...: an odd array is something else
    pairs = count / 2;
  }
  // Value frames to replace, as [begin, end) offsets into reply.
  std::vector<std::pair<size_t, size_t>> secrets;
  for (uint64_t i = 0; i < pairs; ++i) {
    std::string_view name;
    std::string_view value;
    if (!readBulk(reply, &pos, &name)) return false;
    const size_t value_begin = pos;
    if (!readBulk(reply, &pos, &value)) return false;
    if (!value.empty() && isSecretName(name)) secrets.emplace_back(value_begin, pos);
  }
  if (pos != reply.size()) return false;  // not exactly one frame
  if (secrets.empty()) return false;

  std::string result;
  result.reserve(reply.size());
  size_t copied = 0;
  for (const auto& [begin, end] : secrets) {
    result.append(reply.substr(copied, begin - copied));
    result.append(kEmptyBulk);
    copied = end;
  }
  result.append(reply.substr(copied));
  out = std::move(result);
  return true;
}

}  // namespace corral::net
