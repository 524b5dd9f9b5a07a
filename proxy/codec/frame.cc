// Encoders for the replies and commands corral writes itself, and FrameReader, which reads the
// few complete replies corral looks into. Neither is on the forwarding path.
#include <charconv>

#include "proxy/codec/resp.h"

namespace corral::codec {
namespace {

// Appends "<type><v>\r\n".
template <typename Int>
void appendNumberLine(std::string& out, char type, Int v) {
  char buf[24];  // type byte, up to 20 characters of number, CRLF
  buf[0] = type;
  char* end = std::to_chars(buf + 1, buf + sizeof(buf) - 2, v).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(buf, static_cast<size_t>(end - buf));
}

}  // namespace

void appendSimple(std::string& out, std::string_view s) {
  out.push_back('+');
  out.append(s);
  out.append("\r\n");
}

void appendError(std::string& out, std::string_view msg) {
  out.push_back('-');
  out.append(msg);
  out.append("\r\n");
}

void appendInteger(std::string& out, int64_t v) { appendNumberLine(out, ':', v); }

void appendBulk(std::string& out, std::string_view s) {
  appendNumberLine(out, '$', s.size());
  out.append(s);
  out.append("\r\n");
}

void appendNullBulk(std::string& out) { out.append("$-1\r\n"); }

void appendArrayHeader(std::string& out, size_t n) { appendNumberLine(out, '*', n); }

bool FrameReader::number(char type, int64_t* v) {
  if (!ok_ || pos_ >= s_.size() || s_[pos_] != type) return ok_ = false;
  const size_t eol = s_.find("\r\n", pos_);
  if (eol == std::string_view::npos) return ok_ = false;
  const auto r = std::from_chars(s_.data() + pos_ + 1, s_.data() + eol, *v);
  if (r.ec != std::errc() || r.ptr != s_.data() + eol) return ok_ = false;
  pos_ = eol + 2;
  return true;
}

bool FrameReader::array(int64_t* n) { return number('*', n); }

bool FrameReader::integer(int64_t* v) { return number(':', v); }

bool FrameReader::bulk(std::string_view* bytes, bool* nil, std::string_view* raw) {
  const size_t start = pos_;
  int64_t n = 0;
  if (!number('$', &n)) return false;
  *nil = n < 0;
  if (n >= 0) {
    const auto len = static_cast<size_t>(n);
    if (len > s_.size() - pos_ || s_.size() - pos_ - len < 2) return ok_ = false;
    if (bytes != nullptr) *bytes = s_.substr(pos_, len);
    pos_ += len + 2;
  } else if (bytes != nullptr) {
    *bytes = {};
  }
  if (raw != nullptr) *raw = s_.substr(start, pos_ - start);
  return true;
}

void appendCommand(std::string& out, const std::vector<std::string_view>& args) {
  appendArrayHeader(out, args.size());
  for (std::string_view a : args) appendBulk(out, a);
}

}  // namespace corral::codec
