// RESP reply framing: one reply of any RESP2/RESP3 type, without decoding it.
//
//   ReplyParser::parse(data, len)
//     pending_ = 1 ──> per element header: a scalar or an empty aggregate completes one element
//                      (pending_ - 1); "*n" takes its own slot and adds n (pending_ - 1 + n);
//                      "|n" annotates the value after it, so it adds 2n and takes no slot
//              ──> pending_ == 0: kComplete, the whole reply framed
//     incomplete: remember pos_ (the start of the element that did not fit) and pending_
//     an element ending past max_reply_bytes: kOversize ──> discard() on the following calls
//
// Why a count and not a stack of levels: framing only needs to know when the reply ends, and it
// ends when every element announced by every aggregate has been read, at whatever level. So
// nesting costs nothing and has no limit, and a deep reply (a Lua table nested 8,000 levels,
// which Redis sends) never makes a shared connection look desynchronised. Bulk payloads are
// skipped by length, never scanned.
//
// Every decision depends only on bytes already seen, so a reply gives the same result however
// it is split across calls (the fuzz targets check this). Hints are offsets from the frame start,
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

// Element kinds of a reply, from the type byte.
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

// Where a simple line whose text starts at data[text] ends (just past its CRLF), searching from
// `from` (>= text); 0 when its CRLF has not arrived. A lone '\r' or '\n' is content, as in
// hiredis.
size_t lineEnd(const char* data, size_t len, size_t text, size_t from, uint64_t& work) {
  for (;;) {
    const void* hit = from < len ? std::memchr(data + from, '\n', len - from) : nullptr;
    if (hit == nullptr) {
      work += len - from;
      return 0;
    }
    const auto nl = static_cast<size_t>(static_cast<const char*>(hit) - data);
    work += nl + 1 - from;
    if (nl > text && data[nl - 1] == '\r') return nl + 1;
    from = nl + 1;
  }
}

// Past this many expected elements a reply can never end (each is at least 3 bytes).
constexpr uint64_t kPendingCap = uint64_t{1} << 63;

}  // namespace

// One element's header: its kind and type, and for numbers and aggregates where the header line
// ends (`next`) and the count or length it holds (`n`, -1 for the RESP2 nulls).
struct ReplyParser::Header {
  Kind kind;
  ReplyType type;
  char t;
  int64_t n;
  size_t next;
};

// Reads the header of the element at data[p] (p < len). A simple line's header is its type
// byte alone (its end is searched by the caller, which keeps a hint).
ReplyParser::Read ReplyParser::readHeader(const char* data, size_t len, size_t p, Header& h,
                                          ParseError& error) {
  h.t = data[p];
  const TypeInfo info = typeInfo(h.t);
  h.kind = info.kind;
  h.type = info.type;
  h.n = 0;
  h.next = p + 1;
  switch (info.kind) {
    case Kind::kBad:
      error = ParseError::kBadReplyType;
      return Read::kBad;

    case Kind::kLine:
      break;

    case Kind::kInteger: {
      const Num num = parseSigned(data, len, p + 1, h.n, h.next);
      if (num == Num::kMore) return Read::kMore;
      ++work_;
      if (num == Num::kBad) {
        error = ParseError::kBadReplyLength;
        return Read::kBad;
      }
      break;
    }

    case Kind::kNull:  // "_\r\n"
      if (len - p < 3) {
        if (len - p > 1 && data[p + 1] != '\r') {
          error = ParseError::kBadReplyLength;
          return Read::kBad;
        }
        return Read::kMore;
      }
      if (data[p + 1] != '\r' || data[p + 2] != '\n') {
        error = ParseError::kBadReplyLength;
        return Read::kBad;
      }
      ++work_;
      h.next = p + 3;
      break;

    case Kind::kBoolean: {  // "#t\r\n" or "#f\r\n"
      const size_t have = std::min<size_t>(len - p, 4);
      if (std::memcmp(data + p, "#t\r\n", have) != 0 &&
          std::memcmp(data + p, "#f\r\n", have) != 0) {
        error = ParseError::kBadReplyLength;
        return Read::kBad;
      }
      if (have < 4) return Read::kMore;
      ++work_;
      h.next = p + 4;
      break;
    }

    case Kind::kBulk:
    case Kind::kAggregate: {
      // "$?" and "*?" (RESP3 streamed values, not sent by Redis 7) fail as malformed lengths.
      if (p + 1 < len && data[p + 1] == '-') {
        const Num num = nullLine(data, len, p, h.t);
        if (num == Num::kMore) return Read::kMore;
        if (num == Num::kBad) {
          error = ParseError::kBadReplyLength;
          return Read::kBad;
        }
        ++work_;
        h.n = -1;
        h.next = p + 5;
        break;
      }
      // A map's or attribute's count is of pairs: 2n elements must fit too.
      const bool pairs = h.t == '%' || h.t == '|';
      uint64_t n = 0;
      const Num num = parseLength(data, len, p + 1, pairs ? kInt64Max / 2 : kInt64Max, n, h.next);
      if (num == Num::kMore) return Read::kMore;
      ++work_;
      if (num == Num::kBad) {
        error = ParseError::kBadReplyLength;
        return Read::kBad;
      }
      h.n = static_cast<int64_t>(pairs ? 2 * n : n);
      break;
    }
  }
  // The first value opened in the reply's own slot that is not an attribute is the reply's type.
  if (!typed_ && pending_ == 1 && info.type != ReplyType::kAttribute) {
    top_type_ = info.type;
    typed_ = true;
  }
  return Read::kOk;
}

// An aggregate header with elements: an attribute adds its elements in front of the value it
// annotates (which keeps its slot); any other aggregate takes its slot and adds its elements.
void ReplyParser::countAggregate(const Header& h) {
  const auto n = static_cast<uint64_t>(h.n);
  const uint64_t base = h.t == '|' ? pending_ : pending_ - 1;
  pending_ = n >= kPendingCap - base ? kPendingCap : base + n;
}

void ReplyParser::reset() {
  pos_ = 0;
  line_scan_ = 0;
  pending_ = 0;
  started_ = false;
  typed_ = false;
  top_type_ = ReplyType::kSimpleString;
  discarding_ = false;
  in_line_ = false;
  line_cr_ = false;
  skip_ = 0;
}

ReplyResult ReplyParser::fail(ParseError e) {
  reset();
  ReplyResult r;
  r.status = ParseStatus::kError;
  r.error = e;
  return r;
}

ReplyResult ReplyParser::done(ParseStatus status, size_t consumed) {
  ReplyResult r;
  r.status = status;
  r.consumed = consumed;
  r.type = top_type_;
  reset();
  return r;
}

ReplyResult ReplyParser::suspend(size_t pos) {
  if (pos != pos_) line_scan_ = 0;  // the hint belonged to an element we have now passed
  pos_ = pos;
  started_ = true;
  return {};
}

// The element at element_start would end past max_reply_bytes: drop what came before it and
// discard the rest of the reply, that element included, from the next call on.
ReplyResult ReplyParser::oversize(size_t element_start) {
  started_ = false;
  discarding_ = true;
  pos_ = 0;
  line_scan_ = 0;
  ReplyResult r;
  r.status = ParseStatus::kOversize;
  r.error = ParseError::kReplyTooLarge;
  r.consumed = element_start;
  r.type = top_type_;
  return r;
}

// The hot path: a whole one-element reply at the start of fresh data, which is what GET, SET,
// INCR and most commands answer. Anything else (or anything not wholly here) goes to the general
// loop, which decides the same way.
inline bool ReplyParser::quick(const char* data, size_t len, ReplyResult& r) {
  if (started_ || discarding_ || len < 4) return false;
  size_t end = 0;
  switch (data[0]) {
    case '$': {
      if (data[1] == '-') {
        // "$-1\r\n", the nil of a GET that misses: as common as a value.
        if (len < 5 || data[2] != '1' || data[3] != '\r' || data[4] != '\n') return false;
        end = 5;
        r.type = ReplyType::kBulkString;
        break;
      }
      uint64_t n = 0;
      size_t body = 0;
      if (parseLength(data, len, 1, kInt64Max, n, body) != Num::kOk) return false;
      const uint64_t bulk_end = body + n + 2;  // n <= INT64_MAX: no overflow
      if (bulk_end > len || !isCrlf(data + bulk_end - 2)) return false;
      end = static_cast<size_t>(bulk_end);
      r.type = ReplyType::kBulkString;
      break;
    }
    case '+':
    case '-': {
      const auto* nl = static_cast<const char*>(std::memchr(data + 2, '\n', len - 2));
      if (nl == nullptr || nl[-1] != '\r') return false;
      end = static_cast<size_t>(nl - data) + 1;
      work_ += end - 2;
      r.type = data[0] == '+' ? ReplyType::kSimpleString : ReplyType::kError;
      break;
    }
    case ':': {
      int64_t v = 0;
      if (parseSigned(data, len, 1, v, end) != Num::kOk) return false;
      r.type = ReplyType::kInteger;
      break;
    }
    default:
      return false;
  }
  if (end > limits_.max_reply_bytes) return false;
  ++work_;
  r.status = ParseStatus::kComplete;
  r.consumed = end;
  return true;
}

ReplyResult ReplyParser::parse(const char* data, size_t len) {
  if (ReplyResult r; quick(data, len, r)) return r;
  if (discarding_) return discard(data, len);
  if (started_ && pos_ > len) reset();  // caller broke the contract; rescan rather than trust
  if (len == 0 && !started_) return {};
  if (!started_) pending_ = 1;
  const uint64_t max = limits_.max_reply_bytes;
  size_t p = pos_;
  for (;;) {
    if (p == len) return suspend(p);
    Header h;
    ParseError error = ParseError::kNone;
    const Read read = readHeader(data, len, p, h, error);
    if (read == Read::kMore) return suspend(p);
    if (read == Read::kBad) return fail(error);
    // Offsets are from the reply's start, so an element's end is also the reply's size so far.
    switch (h.kind) {
      case Kind::kLine: {
        const size_t from =
            (p == pos_ && line_scan_ > p + 1 && line_scan_ <= len) ? line_scan_ : p + 1;
        const size_t end = lineEnd(data, len, p + 1, from, work_);
        if (end == 0) {
          // Without its CRLF the line ends at len + 1 at the earliest.
          if (len >= max) return oversize(p);
          ReplyResult r = suspend(p);
          line_scan_ = std::max(len, p + 1);
          return r;
        }
        if (end > max) return oversize(p);
        p = end;
        break;
      }
      case Kind::kBulk: {
        if (h.n < 0) {
          if (h.next > max) return oversize(p);
          p = h.next;
          break;
        }
        // The payload is skipped by length, never scanned: a 1 MiB bulk arriving in pieces
        // costs one header parse per call. Its declared length tells its size at once.
        const uint64_t end = h.next + static_cast<uint64_t>(h.n) + 2;
        if (end > max) return oversize(p);
        if (end > len) return suspend(p);
        if (!isCrlf(data + end - 2)) return fail(ParseError::kBadReplyLength);
        p = static_cast<size_t>(end);
        break;
      }
      case Kind::kAggregate:
        if (h.next > max) return oversize(p);
        p = h.next;
        if (h.n > 0) {
          countAggregate(h);
          continue;  // its elements follow
        }
        if (h.t == '|') continue;  // "|0" annotates nothing and is skipped
        break;                     // "*0", "%0", "*-1", ...: a complete element
      default:                     // integer, null, boolean
        if (h.next > max) return oversize(p);
        p = h.next;
        break;
    }
    if (--pending_ == 0) return done(ParseStatus::kComplete, p);
  }
}

// Drops the bulk payload (and CRLF) still owed from data[p], checking that its last two bytes
// are the CRLF. kIncomplete when the data ends first; else kComplete (p just past it).
ReplyResult ReplyParser::skipPayload(const char* data, size_t len, size_t& p) {
  const uint64_t take = std::min<uint64_t>(skip_, len - p);
  const uint64_t left_after = skip_ - take;
  // Byte "r from the end" of the payload sits at p + (skip_ - r) and is dropped now when
  // r > left_after.
  for (uint64_t r = std::min<uint64_t>(skip_, 2); r > left_after; --r) {
    if (data[p + static_cast<size_t>(skip_ - r)] != (r == 2 ? '\r' : '\n')) {
      return fail(ParseError::kBadReplyLength);
    }
  }
  p += static_cast<size_t>(take);
  skip_ = left_after;
  if (skip_ > 0) return {ParseStatus::kIncomplete, ParseError::kNone, p};
  return {ParseStatus::kComplete, ParseError::kNone, p};
}

// The rest of a reply over max_reply_bytes, dropped as it arrives: the same framing as parse(),
// but offsets start at the caller's current data (everything before was consumed), a payload or
// simple line is dropped in pieces, and an incomplete header is left for the next call.
ReplyResult ReplyParser::discard(const char* data, size_t len) {
  size_t p = 0;
  bool element_done = false;
  if (skip_ > 0) {
    const ReplyResult r = skipPayload(data, len, p);
    if (r.status != ParseStatus::kComplete) return r;
    element_done = true;
  } else if (in_line_) {
    // Its CRLF may straddle the previous call: line_cr_ is the '\r' dropped last.
    if (len > 0 && data[0] == '\n' && line_cr_) {
      p = 1;
    } else {
      const size_t end = len > 0 ? lineEnd(data, len, 0, 0, work_) : 0;
      if (end == 0) {
        if (len > 0) line_cr_ = data[len - 1] == '\r';
        return {ParseStatus::kIncomplete, ParseError::kNone, len};
      }
      p = end;
    }
    in_line_ = false;
    element_done = true;
  }
  for (;;) {
    if (element_done) {
      element_done = false;
      if (--pending_ == 0) return done(ParseStatus::kDiscarded, p);
    }
    if (p == len) return {ParseStatus::kIncomplete, ParseError::kNone, p};
    Header h;
    ParseError error = ParseError::kNone;
    const Read read = readHeader(data, len, p, h, error);
    if (read == Read::kMore) return {ParseStatus::kIncomplete, ParseError::kNone, p};
    if (read == Read::kBad) return fail(error);
    switch (h.kind) {
      case Kind::kLine: {
        const size_t end = lineEnd(data, len, p + 1, p + 1, work_);
        if (end == 0) {
          in_line_ = true;
          line_cr_ = len > p + 1 && data[len - 1] == '\r';
          return {ParseStatus::kIncomplete, ParseError::kNone, len};
        }
        p = end;
        break;
      }
      case Kind::kBulk:
        p = h.next;
        if (h.n >= 0) {
          skip_ = static_cast<uint64_t>(h.n) + 2;
          const ReplyResult r = skipPayload(data, len, p);
          if (r.status != ParseStatus::kComplete) return r;
        }
        break;
      case Kind::kAggregate:
        p = h.next;
        if (h.n > 0) {
          countAggregate(h);
          continue;
        }
        if (h.t == '|') continue;
        break;
      default:
        p = h.next;
        break;
    }
    element_done = true;
  }
}

}  // namespace corral::codec
