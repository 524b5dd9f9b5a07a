// Encoders for the replies and commands corral writes itself, FrameReader, which reads the few
// complete replies corral looks into, and readPubsubFrame on top of it. None is on the
// forwarding path.
#include <charconv>
#include <cstdint>

#include "proxy/codec/resp.h"
#include "proxy/codec/resp_lines.h"

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

namespace {

// The RESP type bytes in ReplyType order.
constexpr std::string_view kTypeBytes = "+-:$*_#,(!=%~|>";

}  // namespace

bool FrameReader::peek(ReplyType* type) const {
  if (!ok_ || pos_ >= s_.size()) return false;
  const size_t i = kTypeBytes.find(s_[pos_]);
  if (i == std::string_view::npos || s_[pos_] == '\0') return false;
  *type = static_cast<ReplyType>(i);
  return true;
}

// "<type><text>\r\n": the text up to the first CRLF (a lone CR or LF is content).
bool FrameReader::line(char type, std::string_view* text) {
  if (!ok_ || pos_ >= s_.size() || s_[pos_] != type) return failed();
  const size_t eol = s_.find("\r\n", pos_ + 1);
  if (eol == std::string_view::npos) return failed();
  if (text != nullptr) *text = s_.substr(pos_ + 1, eol - pos_ - 1);
  pos_ = eol + 2;
  return true;
}

// "<type><int64>\r\n", spelled as Redis writes numbers.
bool FrameReader::number(char type, int64_t* v) {
  if (!ok_ || pos_ >= s_.size() || s_[pos_] != type) return failed();
  size_t next = 0;
  if (detail::parseSigned(s_.data(), s_.size(), pos_ + 1, *v, next) != detail::Num::kOk) {
    return failed();
  }
  pos_ = next;
  return true;
}

// "<type><n>\r\n<n bytes>\r\n"; n == -1 (only for '$') gives an empty *bytes.
bool FrameReader::payload(char type, int64_t* n, std::string_view* bytes) {
  if (!number(type, n)) return false;
  if (*n == -1 && type == '$') {
    *bytes = {};
    return true;
  }
  if (*n < 0) return failed();
  const auto len = static_cast<uint64_t>(*n);
  if (len > s_.size() - pos_ || s_.size() - pos_ - len < 2) return failed();
  if (s_.substr(pos_ + len, 2) != "\r\n") return failed();
  *bytes = s_.substr(pos_, static_cast<size_t>(len));
  pos_ += static_cast<size_t>(len) + 2;
  return true;
}

bool FrameReader::array(int64_t* n) { return number('*', n) && (*n >= -1 || failed()); }

bool FrameReader::map(int64_t* n) { return number('%', n) && (*n >= 0 || failed()); }

bool FrameReader::push(int64_t* n) { return number('>', n) && (*n >= 0 || failed()); }

bool FrameReader::aggregate(ReplyType* type, int64_t* n) {
  ReplyType t = ReplyType::kArray;
  if (!peek(&t)) return failed();
  switch (t) {
    case ReplyType::kArray:
      if (!array(n)) return false;
      break;
    case ReplyType::kMap:
      if (!map(n)) return false;
      break;
    case ReplyType::kPush:
      if (!push(n)) return false;
      break;
    case ReplyType::kSet:
      if (!number('~', n) || *n < 0) return failed();
      break;
    default:
      return failed();
  }
  *type = t;
  return true;
}

bool FrameReader::integer(int64_t* v) { return number(':', v); }

bool FrameReader::bulk(std::string_view* bytes, bool* nil, std::string_view* raw) {
  const size_t start = pos_;
  int64_t n = 0;
  std::string_view b;
  if (!payload('$', &n, &b)) return false;
  *nil = n < 0;
  if (bytes != nullptr) *bytes = b;
  if (raw != nullptr) *raw = s_.substr(start, pos_ - start);
  return true;
}

bool FrameReader::simple(std::string_view* text) { return line('+', text); }

bool FrameReader::error(std::string_view* text) {
  if (ok_ && pos_ < s_.size() && s_[pos_] == '!') {
    int64_t n = 0;
    return payload('!', &n, text);
  }
  return line('-', text);
}

bool FrameReader::verbatim(std::string_view* text, std::string_view* format) {
  int64_t n = 0;
  std::string_view b;
  if (!payload('=', &n, &b)) return false;
  if (b.size() < 4 || b[3] != ':') return failed();
  if (format != nullptr) *format = b.substr(0, 3);
  *text = b.substr(4);
  return true;
}

bool FrameReader::string(std::string_view* text) {
  ReplyType t = ReplyType::kBulkString;
  if (!peek(&t)) return failed();
  switch (t) {
    case ReplyType::kBulkString: {
      bool nil = false;
      return bulk(text, &nil) && (!nil || failed());
    }
    case ReplyType::kSimpleString:
      return simple(text);
    case ReplyType::kVerbatim:
      return verbatim(text);
    default:
      return failed();
  }
}

bool FrameReader::skip(std::string_view* raw) {
  if (!ok_ || pos_ >= s_.size()) return failed();
  // The reply parser frames exactly one element, however nested; the frame is already whole,
  // so anything but kComplete means it was not well formed.
  Limits unlimited;
  unlimited.max_reply_bytes = UINT64_MAX;
  ReplyParser parser(unlimited);
  const ReplyResult r = parser.parse(s_.data() + pos_, s_.size() - pos_);
  if (r.status != ParseStatus::kComplete) return failed();
  if (raw != nullptr) *raw = s_.substr(pos_, r.consumed);
  pos_ += r.consumed;
  return true;
}

bool readPubsubFrame(std::string_view frame, PubsubFrame* out) {
  *out = PubsubFrame{};
  FrameReader rd(frame);
  ReplyType type = ReplyType::kArray;
  int64_t n = 0;
  if (!rd.aggregate(&type, &n) || (type != ReplyType::kArray && type != ReplyType::kPush) ||
      n < 1) {
    return false;
  }
  PubsubFrame f;
  for (int64_t i = 0; i < n; ++i) {
    ReplyType next = ReplyType::kArray;
    if (!rd.peek(&next)) return false;
    bool nil = false;
    if (i == 0 && next == ReplyType::kBulkString) {
      if (!rd.bulk(&f.kind, &nil)) return false;
      f.has_kind = !nil;
      // A one-element frame: its only element is also its last, and it is no integer.
    } else if (i == n - 1 && next == ReplyType::kInteger) {
      if (!rd.integer(&f.count)) return false;
      f.has_count = true;
    } else if (!rd.skip()) {
      return false;
    }
  }
  if (!rd.atEnd()) return false;
  *out = f;
  return true;
}

void appendCommand(std::string& out, const std::vector<std::string_view>& args) {
  appendArrayHeader(out, args.size());
  for (std::string_view a : args) appendBulk(out, a);
}

}  // namespace corral::codec
