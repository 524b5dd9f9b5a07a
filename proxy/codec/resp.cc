// RESP framing: requests (multibulk and inline) and replies (any RESP2/RESP3 value).
//
//   RequestParser::parse(data, len)           (the multibulk hot path, fresh or resumed)
//     "*N\r\n" ──> N x "$len\r\n" + bytes + "\r\n" ──> kComplete, args as views into data
//                     │ incomplete: remember (pos_, parsed_, offsets_), consume nothing
//                     └ over max_request_bytes: kOversize ──> discard() on the following calls
//   RequestParser::parseOther                 (everything else)
//     inline ──> parseInline: search '\n' (remember how far) ──> splitInline (sdssplitargs)
//     "*-1", discarding, a caller that broke the contract
//
//   ReplyParser::parse(data, len)
//     one loop over element headers; stack_ holds how many elements each open aggregate still
//     expects. Bulk payloads are skipped by length, never scanned. Incomplete: remember pos_ (the
//     start of the element that did not fit) and the stack; the next call continues from there.
//
// Every decision depends only on bytes already seen, so a frame gives the same result however it
// is split across calls (the fuzz targets check this). Hints are offsets from the frame start,
// never pointers, because the caller may move its buffer between calls.
#include "proxy/codec/resp.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

namespace corral::codec {
namespace {

enum class Num : uint8_t { kOk, kMore, kBad };

inline bool isCrlf(const char* p) { return std::memcmp(p, "\r\n", 2) == 0; }

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// Parses an unsigned decimal line "123\r\n" starting at data[p], with the strictness of Redis's
// string2ll: no '+', no spaces, no leading zeros, at most `max`. On kOk sets `value` and `next`
// (the offset just past the CRLF). kMore means every byte so far may still begin a valid line.
// At most 19 digits are read, so a length line never makes us wait beyond ~21 bytes; Redis
// instead buffers up to 64 KiB looking for the CRLF and then fails, which ends the same way for
// any input, only later.
//
// This is the general case, kept out of line; parseLength() below inlines the common one.
[[gnu::noinline]] Num parseLengthSlow(const char* data, size_t len, size_t p, uint64_t max,
                                      uint64_t& value, size_t& next) {
  const size_t first = p;
  const size_t stop = std::min(len, first + 19);
  uint64_t v = 0;
  for (; p < stop; ++p) {
    const unsigned d = static_cast<unsigned char>(data[p]) - unsigned{'0'};
    if (d > 9) break;
    v = v * 10 + d;
  }
  if (p + 1 >= len) {  // no room for the CRLF yet
    if (p == len) return Num::kMore;
    return data[p] == '\r' && p > first ? Num::kMore : Num::kBad;
  }
  const size_t digits = p - first;
  // A 20th digit lands here as "not a CR".
  if (digits == 0 || (digits > 1 && data[first] == '0') || !isCrlf(data + p) || v > max) {
    return Num::kBad;
  }
  value = v;
  next = p + 2;
  return Num::kOk;
}

// The hot path: one or two digits with the CRLF already here (element counts, command names,
// most keys) cost a handful of instructions; anything else goes to parseLengthSlow().
inline Num parseLength(const char* data, size_t len, size_t p, uint64_t max, uint64_t& value,
                       size_t& next) {
  if (len - p >= 4) {
    const unsigned d0 = static_cast<unsigned char>(data[p]) - unsigned{'0'};
    if (d0 <= 9 && isCrlf(data + p + 1)) {
      if (d0 > max) return Num::kBad;
      value = d0;
      next = p + 3;
      return Num::kOk;
    }
    const unsigned d1 = static_cast<unsigned char>(data[p + 1]) - unsigned{'0'};
    if (d0 - 1 <= 8 && d1 <= 9 && isCrlf(data + p + 2)) {  // d0 in 1..9: no leading zero
      const unsigned v = d0 * 10 + d1;
      if (v > max) return Num::kBad;
      value = v;
      next = p + 4;
      return Num::kOk;
    }
  }
  return parseLengthSlow(data, len, p, max, value, next);
}

// The same for a signed line: an optional '-' (but not "-0"), any int64.
inline Num parseSigned(const char* data, size_t len, size_t p, int64_t& value, size_t& next) {
  uint64_t v = 0;
  if (p < len && data[p] == '-') {
    const Num r = parseLength(data, len, p + 1, kInt64Max + 1, v, next);
    if (r != Num::kOk) return r;
    if (v == 0) return Num::kBad;
    value = static_cast<int64_t>(0 - v);  // modular: v == 2^63 gives INT64_MIN
    return Num::kOk;
  }
  const Num r = parseLength(data, len, p, kInt64Max, v, next);
  value = static_cast<int64_t>(v);
  return r;
}

// isspace() in the C locale, which is what sdssplitargs uses between words.
inline bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

inline int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view errorText(ParseError e) {
  switch (e) {
    case ParseError::kNone:
      return "";
    case ParseError::kInvalidMultibulkLength:
      return "ERR Protocol error: invalid multibulk length";
    case ParseError::kInvalidBulkLength:
      return "ERR Protocol error: invalid bulk length";
    case ParseError::kExpectedDollar:
      // Redis appends ", got 'X'"; a string_view cannot carry the byte.
      return "ERR Protocol error: expected '$'";
    case ParseError::kUnbalancedQuotes:
      return "ERR Protocol error: unbalanced quotes in request";
    case ParseError::kInlineTooLong:
      return "ERR Protocol error: too big inline request";
    case ParseError::kRequestTooLarge:
      return "ERR corral: request too large";
    case ParseError::kTooDeep:
      return "ERR corral: upstream reply nested too deep";
    case ParseError::kBadReplyType:
      return "ERR corral: upstream reply has an unknown type";
    case ParseError::kBadReplyLength:
      return "ERR corral: upstream reply has a malformed length";
  }
  return "ERR corral: unknown protocol error";
}

// ---------------------------------------------------------------------------------------------
// RequestParser

void RequestParser::reset() {
  state_ = State::kStart;
  nargs_ = 0;
  parsed_ = 0;
  pos_ = 0;
  offsets_.clear();
  discard_left_ = 0;
  discard_args_left_ = 0;
}

ParseResult RequestParser::fail(ParseError e) {
  reset();
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error = e;
  return r;
}

// The hot path: a multibulk that starts fresh or resumes. Everything else goes to parseOther().
ParseResult RequestParser::parse(const char* data, size_t len, Request& out) {
  size_t p = 0;
  uint32_t i = 0;
  if (state_ == State::kStart) {
    if (len < 2 || data[0] != '*' || data[1] == '-') return parseOther(data, len, out);
    uint64_t n = 0;
    switch (parseLength(data, len, 1, limits_.max_args, n, p)) {
      case Num::kMore:
        return {};
      case Num::kBad:
        return fail(ParseError::kInvalidMultibulkLength);
      case Num::kOk:
        break;
    }
    ++work_;
    if (n == 0) return emptyMultibulk(data, p, out);
    nargs_ = static_cast<uint32_t>(n);
    offsets_.clear();
  } else if (state_ == State::kMultibulk && pos_ <= len) {
    p = pos_;
    i = parsed_;
  } else {
    return parseOther(data, len, out);
  }

  // out.args collects the args parsed in this call; those from earlier calls are in offsets_.
  out.args.clear();
  const uint32_t nargs = nargs_;
  const uint64_t max_bulk = std::min(limits_.max_bulk_bytes, kInt64Max);
  const uint64_t max_request = limits_.max_request_bytes;
  uint64_t steps = 0;
  for (; i < nargs; ++i) {
    if (p == len) break;
    if (data[p] != '$') return fail(ParseError::kExpectedDollar);
    uint64_t n = 0;
    size_t body = 0;
    const Num num = parseLength(data, len, p + 1, max_bulk, n, body);
    if (num == Num::kMore) break;
    ++steps;
    if (num == Num::kBad) return fail(ParseError::kInvalidBulkLength);
    const uint64_t end = body + n + 2;
    if (end > max_request) {
      // Framing is intact, so rather than close the connection we drop this request: everything
      // up to here now, the rest as it arrives (discard()).
      work_ += steps;
      state_ = State::kDiscard;
      offsets_.clear();
      discard_left_ = n + 2;
      discard_args_left_ = nargs - i - 1;
      return {ParseStatus::kOversize, ParseError::kRequestTooLarge, body};
    }
    if (end > len) break;
    // Redis skips these two bytes unchecked; we check them, since a wrong length would make
    // the rest of the stream (and what we forward upstream) meaningless.
    if (!isCrlf(data + end - 2)) return fail(ParseError::kInvalidBulkLength);
    out.args.emplace_back(data + body, static_cast<size_t>(n));
    p = static_cast<size_t>(end);
  }
  work_ += steps;
  if (i < nargs) return suspendMultibulk(data, p, i, out);

  if (!offsets_.empty()) {
    // The frame arrived in pieces: put the earlier args (kept as offsets) in front.
    const size_t earlier = offsets_.size();
    const size_t now = out.args.size();
    out.args.resize(earlier + now);
    std::move_backward(out.args.begin(), out.args.begin() + static_cast<ptrdiff_t>(now),
                       out.args.end());
    for (size_t k = 0; k < earlier; ++k) {
      out.args[k] = std::string_view(data + offsets_[k].first, offsets_[k].second);
    }
    offsets_.clear();
  }
  state_ = State::kStart;
  out.frame = std::string_view(data, p);
  out.is_inline = false;
  return {ParseStatus::kComplete, ParseError::kNone, p};
}

// Redis silently skips "*0" and "*-1"; the caller sees an empty request and skips it too.
ParseResult RequestParser::emptyMultibulk(const char* data, size_t frame_len, Request& out) {
  out.args.clear();
  out.frame = std::string_view(data, frame_len);
  out.is_inline = false;
  return {ParseStatus::kComplete, ParseError::kNone, frame_len};
}

// The rarer cases: inline commands, a negative count, discarding, and nothing to parse.
ParseResult RequestParser::parseOther(const char* data, size_t len, Request& out) {
  switch (state_) {
    case State::kStart:
      break;
    case State::kMultibulk:
      // Only reached when the caller handed back fewer bytes than we already parsed: a broken
      // contract. Start over rather than trust offsets past the end of its data.
      reset();
      break;
    case State::kInline:
      if (pos_ <= len) return parseInline(data, len, out);
      reset();
      break;
    case State::kDiscard:
      return discard(data, len);
  }
  if (len == 0) return {};
  if (data[0] != '*') return parseInline(data, len, out);
  if (len == 1) return {};
  // "*-1\r\n" is the only negative count we accept (resp.h; Redis skips any negative count).
  static constexpr std::string_view kNullArray = "*-1\r\n";
  const size_t have = std::min(len, kNullArray.size());
  if (std::memcmp(data, kNullArray.data(), have) != 0) {
    return fail(ParseError::kInvalidMultibulkLength);
  }
  if (have < kNullArray.size()) return {};
  ++work_;
  return emptyMultibulk(data, kNullArray.size(), out);
}

ParseResult RequestParser::suspendMultibulk(const char* data, size_t pos, uint32_t parsed,
                                            Request& out) {
  for (std::string_view a : out.args) {
    offsets_.emplace_back(static_cast<size_t>(a.data() - data), a.size());
  }
  out.args.clear();
  state_ = State::kMultibulk;
  pos_ = pos;
  parsed_ = parsed;
  return {};
}

ParseResult RequestParser::discard(const char* data, size_t len) {
  size_t p = 0;
  for (;;) {
    if (discard_left_ > 0) {
      const uint64_t take = std::min<uint64_t>(discard_left_, len - p);
      const uint64_t left_after = discard_left_ - take;
      // The last two bytes of each bulk must be its CRLF, or framing is lost. Byte "r from the
      // end" sits at p + (discard_left_ - r) and is dropped now when r > left_after.
      for (uint64_t r = std::min<uint64_t>(discard_left_, 2); r > left_after; --r) {
        const char want = r == 2 ? '\r' : '\n';
        if (data[p + static_cast<size_t>(discard_left_ - r)] != want) {
          return fail(ParseError::kInvalidBulkLength);
        }
      }
      p += static_cast<size_t>(take);
      discard_left_ = left_after;
      if (discard_left_ > 0) return {ParseStatus::kIncomplete, ParseError::kNone, p};
    }
    if (discard_args_left_ == 0) {
      state_ = State::kStart;
      return {ParseStatus::kDiscarded, ParseError::kNone, p};
    }
    if (p == len) return {ParseStatus::kIncomplete, ParseError::kNone, p};
    if (data[p] != '$') return fail(ParseError::kExpectedDollar);
    uint64_t n = 0;
    size_t body = 0;
    const Num num =
        parseLength(data, len, p + 1, std::min(limits_.max_bulk_bytes, kInt64Max), n, body);
    if (num == Num::kMore) return {ParseStatus::kIncomplete, ParseError::kNone, p};
    ++work_;
    if (num == Num::kBad) return fail(ParseError::kInvalidBulkLength);
    p = body;
    discard_left_ = n + 2;
    --discard_args_left_;
  }
}

ParseResult RequestParser::parseInline(const char* data, size_t len, Request& out) {
  // The line may hold max_inline_bytes before its '\n'. Searching only that far keeps the
  // outcome independent of how the bytes were split, and pos_ keeps us from searching twice.
  const size_t limit = limits_.max_inline_bytes;
  const size_t from = state_ == State::kInline ? pos_ : 0;
  const size_t until = std::min(len, limit + 1);
  const void* nl = nullptr;
  if (from < until) {
    nl = std::memchr(data + from, '\n', until - from);
    work_ += until - from;  // an upper bound; exact enough for a test of "scanned once"
  }
  if (nl == nullptr) {
    if (len > limit) return fail(ParseError::kInlineTooLong);
    state_ = State::kInline;
    pos_ = len;
    return {};
  }
  const auto eol = static_cast<size_t>(static_cast<const char*>(nl) - data);
  size_t line_len = eol;
  if (line_len > 0 && data[line_len - 1] == '\r') --line_len;
  state_ = State::kStart;
  pos_ = 0;
  if (!splitInline(data, line_len, out)) return fail(ParseError::kUnbalancedQuotes);
  out.frame = std::string_view(data, eol + 1);
  out.is_inline = true;
  return {ParseStatus::kComplete, ParseError::kNone, eol + 1};
}

// Splits an inline command into words exactly as Redis's sdssplitargs does, including its
// C-string view of the line: an embedded NUL ends the line. Words go to scratch_, reserved up
// front for the whole line (no word is longer than its source), so the views stay valid while
// it fills. Returns false on unbalanced quotes.
bool RequestParser::splitInline(const char* line, size_t n, Request& out) {
  if (const void* nul = std::memchr(line, '\0', n)) {
    n = static_cast<size_t>(static_cast<const char*>(nul) - line);
  }
  // at(k) reads the line as the NUL-terminated string sdssplitargs sees.
  auto at = [line, n](size_t k) -> char { return k < n ? line[k] : '\0'; };
  scratch_.clear();
  scratch_.reserve(n);
  out.args.clear();
  size_t i = 0;
  for (;;) {
    while (i < n && isSpace(line[i])) ++i;
    if (i == n) return true;
    bool in_dq = false;  // inside "double quotes"
    bool in_sq = false;  // inside 'single quotes'
    bool done = false;
    const size_t start = scratch_.size();
    while (!done) {
      const char c = at(i);
      if (in_dq) {
        if (c == '\\' && at(i + 1) == 'x' && hexValue(at(i + 2)) >= 0 && hexValue(at(i + 3)) >= 0) {
          scratch_.push_back(static_cast<char>(hexValue(at(i + 2)) * 16 + hexValue(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          ++i;
          switch (line[i]) {
            case 'n':
              scratch_.push_back('\n');
              break;
            case 'r':
              scratch_.push_back('\r');
              break;
            case 't':
              scratch_.push_back('\t');
              break;
            case 'b':
              scratch_.push_back('\b');
              break;
            case 'a':
              scratch_.push_back('\a');
              break;
            default:
              scratch_.push_back(line[i]);
              break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a space or the end of the line.
          if (at(i + 1) != '\0' && !isSpace(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated quotes
        } else {
          scratch_.push_back(c);
        }
      } else if (in_sq) {
        if (c == '\\' && at(i + 1) == '\'') {
          ++i;
          scratch_.push_back('\'');
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !isSpace(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          scratch_.push_back(c);
        }
      } else {
        switch (c) {
          // Not isSpace(): like Redis, '\v' and '\f' end no word but are skipped between words.
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"':
            in_dq = true;
            break;
          case '\'':
            in_sq = true;
            break;
          default:
            scratch_.push_back(c);
            break;
        }
      }
      if (i < n) ++i;
    }
    out.args.emplace_back(scratch_.data() + start, scratch_.size() - start);
  }
}

// ---------------------------------------------------------------------------------------------
// ReplyParser

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

// ---------------------------------------------------------------------------------------------
// Encoders

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
