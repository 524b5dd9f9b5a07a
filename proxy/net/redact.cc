// CONFIG GET reply redaction: walk the frame once with codec::FrameReader, recording which values
// to empty, then copy the frame with those values replaced. Only the two shapes CONFIG GET
// produces are accepted, so anything unexpected is refused rather than half-understood.
#include "proxy/net/redact.h"

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "proxy/codec/resp.h"

namespace corral::net {
namespace {

// Config parameters whose values are credentials. requirepass and masterauth are passwords;
// masteruser names the ACL user of those credentials, hidden as well so a client cannot learn
// which user corral's upstream uses. (Redis also returns tls-key-file-pass and
// tls-client-key-file-pass through CONFIG GET; they are the server's secrets, not corral's.)
constexpr std::array<std::string_view, 5> kSecretNames = {
    "requirepass", "masterauth", "masteruser", "tls-key-file-pass", "tls-client-key-file-pass"};

constexpr std::string_view kEmptyBulk = "$0\r\n\r\n";

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

}  // namespace

bool redactConfigGetReply(std::string_view reply, std::string& out) {
  codec::FrameReader rd(reply);
  codec::ReplyType type = codec::ReplyType::kArray;
  int64_t count = 0;
  if (!rd.aggregate(&type, &count) || count < 0) return false;
  int64_t pairs = count;
  if (type == codec::ReplyType::kArray) {
    if (count % 2 != 0) return false;  // name, value, ...: an odd array is something else
    pairs = count / 2;
  } else if (type != codec::ReplyType::kMap) {
    return false;
  }
  // Value frames to replace, as [begin, end) offsets into reply. A read past the end fails, so
  // a huge declared count ends the loop at the reply's last byte.
  std::vector<std::pair<size_t, size_t>> secrets;
  for (int64_t i = 0; i < pairs; ++i) {
    std::string_view name;
    std::string_view value;
    std::string_view raw;
    bool nil = false;
    if (!rd.bulk(&name, &nil) || nil) return false;
    if (!rd.bulk(&value, &nil, &raw) || nil) return false;
    if (!value.empty() && isSecretName(name)) {
      const auto begin = static_cast<size_t>(raw.data() - reply.data());
      secrets.emplace_back(begin, begin + raw.size());
    }
  }
  if (!rd.atEnd()) return false;  // not exactly one frame
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
