#include "proxy/cluster/redirect.h"

#include "proxy/cluster/slot.h"

namespace corral::cluster {
namespace {

// A decimal number of 1..5 digits (no sign, no spaces) no larger than max.
bool smallNumber(std::string_view s, uint32_t max, uint16_t* out) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

// " <slot> <host>:<port>", the rest of a MOVED or ASK line after its word.
bool target(std::string_view rest, Redirect* r) {
  if (rest.empty()) return false;
  rest.remove_prefix(1);  // the space startsWithWord found
  const size_t space = rest.find(' ');
  if (space == std::string_view::npos) return false;
  if (!smallNumber(rest.substr(0, space), kSlots - 1, &r->slot)) return false;
  const std::string_view addr = rest.substr(space + 1);
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return false;
  if (!smallNumber(addr.substr(colon + 1), 65535, &r->port) || r->port == 0) return false;
  std::string_view host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.find(' ') != std::string_view::npos) return false;
  r->host = host;
  return true;
}

// True when line starts with the word `code` followed by a space or the line's end.
bool startsWithWord(std::string_view line, std::string_view code) {
  return line.size() >= code.size() && line.substr(0, code.size()) == code &&
         (line.size() == code.size() || line[code.size()] == ' ');
}

}  // namespace

Redirect parseRedirect(std::string_view reply) {
  Redirect r;
  if (reply.empty() || reply[0] != '-') return r;
  // The error line, without '-' and its CRLF (a reply given without its CRLF is read whole).
  std::string_view line = reply.substr(1);
  const size_t eol = line.find("\r\n");
  if (eol != std::string_view::npos) line = line.substr(0, eol);
  if (startsWithWord(line, "MOVED")) {
    if (target(line.substr(5), &r)) r.kind = Redirect::Kind::kMoved;
  } else if (startsWithWord(line, "ASK")) {
    if (target(line.substr(3), &r)) r.kind = Redirect::Kind::kAsk;
  } else if (startsWithWord(line, "TRYAGAIN")) {
    r.kind = Redirect::Kind::kTryAgain;
  } else if (startsWithWord(line, "CLUSTERDOWN")) {
    r.kind = Redirect::Kind::kClusterDown;
  }
  if (r.kind == Redirect::Kind::kNone) r = Redirect{};
  return r;
}

}  // namespace corral::cluster
