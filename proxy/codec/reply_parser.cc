// RESP reply framing: one reply of any RESP2/RESP3 type, without decoding it.
//
//   ReplyParser::parse(data, len)
//     one loop over element headers; stack_ holds how many elements each open aggregate still
//     expects. Bulk payloads are skipped by length, never scanned. Incomplete: remember pos_ (the
//     start of the element that did not fit) and the stack; the next call continues from there.
//
// Every decision depends only on bytes already seen, so a frame gives the same result however it
// is split across calls (the fuzz targets check this). Hints are offsets from the frame start,
// never pointers, because the caller may move its buffer between calls.
#include <algorithm>
#include <cstring>

#include "proxy/codec/resp.h"
#include "proxy/codec/resp_lines.h"

namespace corral::codec {

using detail::isCrlf;
using detail::kInt64Max;
using detail::Num;
using detail::parseLength;
using detail::parseSigned;

namespace {

// Element header kinds of a reply, from the type byte.
enum class Kind : uint8_t { kLine, kInteger, kNull, kBoolean, kBulk, kAggregate, kBad };

struct TypeInfo {
  Kind kind;
  ReplyType type;
};

inline TypeInfo typeInfo(char c) {
  switch (c) {
    case '+':
      return {Kind::kLine, ReplyType::kSimpleString};
    case '-':
      return {Kind::kLine, ReplyType::kError};
    case ':':
      return {Kind::kInteger, ReplyType::kInteger};
    case '$':
      return {Kind::kBulk, ReplyType::kBulkString};
    case '*':
      return {Kind::kAggregate, ReplyType::kArray};
    case '_':
      return {Kind::kNull, ReplyType::kNull};
    case '#':
      return {Kind::kBoolean, ReplyType::kBoolean};
    case ',':
      return {Kind::kLine, ReplyType::kDouble};
    case '(':
      return {Kind::kLine, ReplyType::kBigNumber};
    case '!':
      return {Kind::kBulk, ReplyType::kBulkError};
    case '=':
      return {Kind::kBulk, ReplyType::kVerbatim};
    case '%':
      return {Kind::kAggregate, ReplyType::kMap};
    case '~':
      return {Kind::kAggregate, ReplyType::kSet};
    case '|':
      return {Kind::kAggregate, ReplyType::kAttribute};
    case '>':
      return {Kind::kAggregate, ReplyType::kPush};
    default:
      return {Kind::kBad, ReplyType::kSimpleString};
  }
}

// Checks a "-1" length at data[p] (type byte `t`): only "$-1\r\n" and "*-1\r\n", the RESP2
// nulls, are valid. kMore while the bytes so far are a prefix of one.
Num nullLine(const char* data, size_t len, size_t p, char t) {
  if (t != '$' && t != '*') return Num::kBad;
  const size_t have = std::min<size_t>(len - p - 1, 4);
  if (std::memcmp(data + p + 1, "-1\r\n", have) != 0) return Num::kBad;
  return have < 4 ? Num::kMore : Num::kOk;
}

}  // namespace

void ReplyParser::reset() {
  pos_ = 0;
  line_scan_ = 0;
  stack_.clear();
  started_ = false;
  top_type_ = ReplyType::kSimpleString;
}

ReplyResult ReplyParser::fail(ParseError e) {
  reset();
  ReplyResult r;
  r.status = ParseStatus::kError;
  r.error = e;
  return r;
}

ReplyResult ReplyParser::suspend(size_t pos) {
  if (pos != pos_) line_scan_ = 0;  // the hint belonged to an element we have now passed
  pos_ = pos;
  started_ = true;
  return {};
}

ReplyResult ReplyParser::parse(const char* data, size_t len) {
  if (started_ && pos_ > len) reset();  // caller broke the contract; rescan rather than trust
  if (len == 0 && !started_) return {};
  size_t p = pos_;
  for (;;) {
    if (p == len) return suspend(p);
    const char t = data[p];
    const TypeInfo info = typeInfo(t);
    // The first value opened at depth 0 that is not an attribute is the reply's own type.
    if (stack_.empty() && info.kind != Kind::kBad && info.type != ReplyType::kAttribute) {
      top_type_ = info.type;
    }
    switch (info.kind) {
      case Kind::kBad:
        return fail(ParseError::kBadReplyType);

      case Kind::kLine: {
        // Free text up to the first CRLF (as hiredis: a lone '\r' or '\n' is content). Resume
        // the search where the previous call stopped.
        size_t from = (p == pos_ && line_scan_ > p + 1 && line_scan_ <= len) ? line_scan_ : p + 1;
        const char* q = nullptr;
        for (;;) {
          const void* hit = from < len ? std::memchr(data + from, '\n', len - from) : nullptr;
          if (hit == nullptr) {
            work_ += len - from;
            break;
          }
          const char* h = static_cast<const char*>(hit);
          work_ += static_cast<size_t>(h - data) + 1 - from;
          if (static_cast<size_t>(h - data) >= p + 2 && h[-1] == '\r') {
            q = h;
            break;
          }
          from = static_cast<size_t>(h - data) + 1;
        }
        if (q == nullptr) {
          ReplyResult r = suspend(p);
          line_scan_ = std::max(len, p + 1);
          return r;
        }
        p = static_cast<size_t>(q - data) + 1;
        break;
      }

      case Kind::kInteger: {
        int64_t v = 0;
        size_t next = 0;
        const Num num = parseSigned(data, len, p + 1, v, next);
        if (num == Num::kMore) return suspend(p);
        ++work_;
        if (num == Num::kBad) return fail(ParseError::kBadReplyLength);
        p = next;
        break;
      }

      case Kind::kNull:  // "_\r\n"
        if (len - p < 3) {
          if ((len - p > 1 && data[p + 1] != '\r')) return fail(ParseError::kBadReplyLength);
          return suspend(p);
        }
        if (data[p + 1] != '\r' || data[p + 2] != '\n') return fail(ParseError::kBadReplyLength);
        ++work_;
        p += 3;
        break;

      case Kind::kBoolean: {  // "#t\r\n" or "#f\r\n"
        const size_t have = std::min<size_t>(len - p, 4);
        static constexpr char kT[] = "#t\r\n";
        static constexpr char kF[] = "#f\r\n";
        if (std::memcmp(data + p, kT, have) != 0 && std::memcmp(data + p, kF, have) != 0) {
          return fail(ParseError::kBadReplyLength);
        }
        if (have < 4) return suspend(p);
        ++work_;
        p += 4;
        break;
      }

      case Kind::kBulk: {
        // "$?" (RESP3 streamed strings, not sent by Redis 7) fails here as a malformed length.
        uint64_t n = 0;
        size_t body = 0;
        if (p + 1 < len && data[p + 1] == '-') {
          const Num num = nullLine(data, len, p, t);
          if (num == Num::kMore) return suspend(p);
          if (num == Num::kBad) return fail(ParseError::kBadReplyLength);
          ++work_;
          p += 5;  // "$-1\r\n", the RESP2 null bulk
          break;
        }
        const Num num = parseLength(data, len, p + 1, kInt64Max, n, body);
        if (num == Num::kMore) return suspend(p);
        ++work_;
        if (num == Num::kBad) return fail(ParseError::kBadReplyLength);
        // The payload is skipped by length, never scanned: a 1 MiB bulk arriving in pieces
        // costs one header parse per call.
        const uint64_t end = body + n + 2;
        if (end > len) return suspend(p);
        if (!isCrlf(data + end - 2)) return fail(ParseError::kBadReplyLength);
        p = static_cast<size_t>(end);
        break;
      }

      case Kind::kAggregate: {
        // "*?" (streamed aggregates) fails as a malformed length, like "$?".
        if (p + 1 < len && data[p + 1] == '-') {
          const Num num = nullLine(data, len, p, t);
          if (num == Num::kMore) return suspend(p);
          if (num == Num::kBad) return fail(ParseError::kBadReplyLength);
          ++work_;
          p += 5;  // "*-1\r\n", the RESP2 null array: a complete element
          break;
        }
        uint64_t n = 0;
        size_t next = 0;
        const bool pairs = t == '%' || t == '|';
        const Num num = parseLength(data, len, p + 1, pairs ? kInt64Max / 2 : kInt64Max, n, next);
        if (num == Num::kMore) return suspend(p);
        ++work_;
        if (num == Num::kBad) return fail(ParseError::kBadReplyLength);
        p = next;
        if (n == 0) {
          // "*0", "%0", ...: a complete element. "|0" annotates nothing and is skipped.
          if (t == '|') continue;
          break;
        }
        if (stack_.size() >= limits_.max_depth) return fail(ParseError::kTooDeep);
        const auto count = static_cast<int64_t>(pairs ? 2 * n : n);
        stack_.push_back({count, t == '|'});
        continue;  // its elements follow
      }
    }

    // One element is complete: count it in its aggregate, closing those that are now full.
    bool done = true;
    while (!stack_.empty()) {
      Level& top = stack_.back();
      if (--top.left > 0) {
        done = false;
        break;
      }
      const bool attr = top.attr;
      stack_.pop_back();
      if (attr) {
        // An attribute is a prefix: the value it annotates still follows at this level.
        done = false;
        break;
      }
    }
    if (done) {
      ReplyResult r;
      r.status = ParseStatus::kComplete;
      r.consumed = p;
      r.type = top_type_;
      reset();
      return r;
    }
  }
}

}  // namespace corral::codec
