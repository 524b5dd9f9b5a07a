// RESP request framing: multibulk arrays of bulk strings (this file) and inline commands
// (request_inline.cc), with the acceptance rules of Redis 7.0.15's networking.c.
//
//   RequestParser::parse(data, len)           (the multibulk hot path, fresh or resumed)
//     "*N\r?" ──> N x "$len\r?" + bytes + "??" ──> kComplete, args as views into data
//        │            │ incomplete: remember (pos_, parsed_, offsets_), consume nothing
//        │            └ over max_request_bytes: kOversize ──> discard() on the following calls
//        └ count <= 0: kComplete, no args (skipped);  over max_args: kOversize ──> discard()
//   RequestParser::parseOther                 (everything else)
//     inline ──> parseInline (request_inline.cc), discarding, a caller that broke the contract
//
// A length line is Redis's: from the type byte to the first '\r', plus one byte that is not
// looked at ("\r?" above); header() reads the common "$3\r\n" in a few instructions and
// headerSlow() everything else. Every decision depends only on bytes already seen, so a frame
// gives the same result however it is split across calls (the fuzz targets check this). Hints
// are offsets, never pointers, because the caller may move its buffer between calls.
#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

#include "proxy/codec/resp.h"

namespace corral::codec {
namespace {

// Redis's string2ll (util.c), which decides every request length: an optional '-', then "0" or
// a digit 1-9 followed by digits, fewer than 21 characters in all, fitting a long long.
bool string2ll(const char* s, size_t n, int64_t& value) {
  if (n == 0 || n >= 21) return false;
  if (n == 1 && s[0] == '0') {
    value = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative && ++i == n) return false;
  if (s[i] < '1' || s[i] > '9') return false;
  uint64_t v = 0;
  for (; i < n; ++i) {
    const unsigned d = static_cast<unsigned char>(s[i]) - unsigned{'0'};
    if (d > 9) return false;
    // At most 20 characters: with 19 digits v stays below 10^19 < 2^64, but a 20th may wrap.
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  if (negative ? v > kMax + 1 : v > kMax) return false;
  value = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);  // 2^63: INT64_MIN
  return true;
}

// Redis's limits for a client that has not authenticated yet (networking.c).
constexpr int64_t kUnauthMaxArgs = 10;
constexpr int64_t kUnauthMaxBulk = 16384;

// "ERR Protocol error: expected '$', got 'X'" for every byte X, built once. Redis formats the
// byte with %c and then replaces CR and LF with spaces (addReplyErrorFormat). A NUL cannot be
// reported: Redis's strchr stops at it, so that line never ends.
struct ExpectedDollarTexts {
  static constexpr std::string_view kHead = "ERR Protocol error: expected '$', got '";
  static constexpr size_t kSize = kHead.size() + 2;
  std::array<std::array<char, kSize>, 256> text{};
  constexpr ExpectedDollarTexts() {
    for (size_t b = 0; b < 256; ++b) {
      for (size_t i = 0; i < kHead.size(); ++i) text[b][i] = kHead[i];
      const char c = static_cast<char>(b);
      text[b][kHead.size()] = (c == '\r' || c == '\n') ? ' ' : c;
      text[b][kHead.size() + 1] = '\'';
    }
  }
};
constexpr ExpectedDollarTexts kExpectedDollarTexts;

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
      return "ERR Protocol error: expected '$'";  // errorText(ParseResult) names the byte
    case ParseError::kMultibulkLineTooLong:
      return "ERR Protocol error: too big mbulk count string";
    case ParseError::kBulkLineTooLong:
      return "ERR Protocol error: too big bulk count string";
    case ParseError::kUnauthenticatedMultibulkLength:
      return "ERR Protocol error: unauthenticated multibulk length";
    case ParseError::kUnauthenticatedBulkLength:
      return "ERR Protocol error: unauthenticated bulk length";
    case ParseError::kUnbalancedQuotes:
      return "ERR Protocol error: unbalanced quotes in request";
    case ParseError::kInlineTooLong:
      return "ERR Protocol error: too big inline request";
    case ParseError::kRequestTooLarge:
      return "ERR corral: request too large";
    case ParseError::kTooManyArgs:
      return "ERR corral: too many arguments (limits.max_args)";
    case ParseError::kReplyTooLarge:
      return "ERR corral: reply too large (limits.max_reply_bytes)";
    case ParseError::kBadReplyType:
      return "ERR corral: upstream reply has an unknown type";
    case ParseError::kBadReplyLength:
      return "ERR corral: upstream reply has a malformed length";
  }
  return "ERR corral: unknown protocol error";
}

std::string_view errorText(const ParseResult& r) {
  if (r.error != ParseError::kExpectedDollar) return errorText(r.error);
  const auto& t = kExpectedDollarTexts.text[static_cast<unsigned char>(r.got)];
  return std::string_view(t.data(), t.size());
}

void RequestParser::updateBulkBound() {
  bulk_bound_ = std::min<uint64_t>(limits_.max_bulk_bytes, INT64_MAX);
  if (auth_required_) bulk_bound_ = std::min<uint64_t>(bulk_bound_, kUnauthMaxBulk);
}

void RequestParser::reset() {
  state_ = State::kStart;
  line_nul_ = false;
  line_scan_ = 0;
  nargs_ = 0;
  parsed_ = 0;
  pos_ = 0;
  offsets_.clear();
  discard_left_ = 0;
  discard_args_left_ = 0;
}

ParseResult RequestParser::fail(ParseError e, char got) {
  reset();
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error = e;
  r.got = got;
  return r;
}

// The length line whose type byte is data[h] (h < len). kOk / kBadNumber: the line is complete,
// `next` is just past it, and its number is valid (in `value`) or not; the caller then checks the
// type byte. The common "$3\r\n" / "$12\r\n" (any byte after the '\r'), with the expected type
// byte kType, is decided here; the rest goes to headerSlow(). A search hint (line_scan_) is only
// ever kept for a line that does not look like these, so this path needs no look at it.
template <char kType>
inline RequestParser::Line RequestParser::header(const char* data, size_t len, size_t h,
                                                 int64_t& value, size_t& next) {
  if (len - h >= 4 && data[h] == kType) {
    const unsigned d0 = static_cast<unsigned char>(data[h + 1]) - unsigned{'0'};
    if (d0 <= 9 && data[h + 2] == '\r') {
      value = d0;
      next = h + 4;
      return Line::kOk;
    }
    if (len - h >= 5) {
      const unsigned d1 = static_cast<unsigned char>(data[h + 2]) - unsigned{'0'};
      if (d0 - 1 <= 8 && d1 <= 9 && data[h + 3] == '\r') {  // d0 in 1..9: no leading zero
        value = d0 * 10 + d1;
        next = h + 5;
        return Line::kOk;
      }
    }
  }
  return headerSlow(data, len, h, value, next);
}

// Redis finds the end of a length line with strchr(line, '\r') and needs one more byte after it
// (networking.c, processMultibulkBuffer); without a '\r', once more than 64 KiB are buffered, it
// fails with "too big ... count string". So: the line ends at its first '\r', a NUL before that
// means it never ends, and we search only max_inline_bytes + 1 bytes so that the outcome does not
// depend on how the bytes were split (Redis's does, on its 16 KiB reads, for a '\r' found just
// past 64 KiB: it then fails with "invalid ... length" instead; both close the connection).
[[gnu::noinline]] RequestParser::Line RequestParser::headerSlow(const char* data, size_t len,
                                                                size_t h, int64_t& value,
                                                                size_t& next) {
  if (h + line_scan_ > len) {  // a caller that handed back fewer bytes: search again
    line_scan_ = 0;
    line_nul_ = false;
  }
  size_t cr = 0;
  bool found = false;
  // The '\r' must come within the line's first max_inline_bytes + 1 bytes.
  const size_t until = std::min(len, h + size_t{limits_.max_inline_bytes} + 1);
  if (line_scan_ == 0 && data[h] != '\r' && data[h] != '\0') {
    // A well-formed number: at most 21 characters of '-' and digits, which are neither '\r'
    // nor NUL, so a '\r' right after them is the line's first. Too short to need a hint.
    size_t i = h + 1;
    const size_t stop = std::min(until, h + 22);
    if (i < stop && data[i] == '-') ++i;
    while (i < stop && static_cast<unsigned>(static_cast<unsigned char>(data[i]) - '0') <= 9) ++i;
    if (i < stop && data[i] == '\r') {
      if (i + 1 == len) return Line::kMore;
      cr = i;
      found = true;
    } else if (i == until) {
      return len - h > limits_.max_inline_bytes ? Line::kTooLong : Line::kMore;
    } else {
      line_scan_ = i - h;  // [h, i) holds no '\r' and no NUL
    }
  }
  if (!found && !line_nul_) {
    const size_t from = h + line_scan_;
    if (from < until) {
      const auto* q = static_cast<const char*>(std::memchr(data + from, '\r', until - from));
      const size_t end = q != nullptr ? static_cast<size_t>(q - data) : until;
      work_ += end - from;
      if (std::memchr(data + from, '\0', end - from) != nullptr) {
        line_nul_ = true;
      } else if (q == nullptr) {
        line_scan_ = until - h;
      } else if (end + 1 == len) {
        line_scan_ = end - h;  // resume at the '\r'
        return Line::kMore;
      } else {
        cr = end;
        found = true;
      }
    }
  }
  if (!found) {
    return len - h > limits_.max_inline_bytes ? Line::kTooLong : Line::kMore;
  }
  // Only this general search keeps a hint, and only for a line header()'s fast path cannot
  // read (a byte other than digits, or too many of them): so the fast path never needs to look
  // at, or clear, line_scan_.
  line_scan_ = 0;
  next = cr + 2;
  // A line that is only its type byte '\r' has no number (the caller reports the type byte).
  if (cr == h || !string2ll(data + h + 1, cr - h - 1, value)) return Line::kBadNumber;
  return Line::kOk;
}

// The error for a complete bulk length line at fault, in Redis's order: the '$' first, then the
// number, then the unauthenticated limit. kOk (no error) when the element is fine.
ParseResult RequestParser::bulkError(Line line, char type, int64_t n) {
  if (type != '$') return fail(ParseError::kExpectedDollar, type);
  if (line == Line::kBadNumber || n < 0 ||
      static_cast<uint64_t>(n) > std::min<uint64_t>(limits_.max_bulk_bytes, INT64_MAX)) {
    return fail(ParseError::kInvalidBulkLength);
  }
  if (auth_required_ && n > kUnauthMaxBulk) return fail(ParseError::kUnauthenticatedBulkLength);
  return {ParseStatus::kComplete, ParseError::kNone, 0, 0};
}

// The hot path: a multibulk that starts fresh or resumes. Everything else goes to parseOther().
ParseResult RequestParser::parse(const char* data, size_t len, Request& out) {
  size_t p = 0;
  uint32_t i = 0;
  if (state_ == State::kStart || state_ == State::kCount) {
    if (len == 0 || data[0] != '*') return parseOther(data, len, out);
    int64_t n = 0;
    switch (header<'*'>(data, len, 0, n, p)) {
      case Line::kMore:
        state_ = State::kCount;
        return {};
      case Line::kTooLong:
        return fail(ParseError::kMultibulkLineTooLong);
      case Line::kBadNumber:
        return fail(ParseError::kInvalidMultibulkLength);
      case Line::kOk:
        break;
    }
    ++work_;
    state_ = State::kStart;
    if (n > INT_MAX) return fail(ParseError::kInvalidMultibulkLength);
    if (auth_required_ && n > kUnauthMaxArgs) {
      return fail(ParseError::kUnauthenticatedMultibulkLength);
    }
    if (n <= 0) return emptyMultibulk(data, p, out);
    if (static_cast<uint64_t>(n) > limits_.max_args) {
      // Redis 7 accepts up to INT_MAX elements; corral's limit drops the request as it arrives,
      // as it does one over max_request_bytes, and keeps the connection.
      state_ = State::kDiscard;
      discard_left_ = 0;
      discard_args_left_ = static_cast<uint32_t>(n);
      return {ParseStatus::kOversize, ParseError::kTooManyArgs, p};
    }
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
  const uint64_t max_request = limits_.max_request_bytes;
  uint64_t steps = 0;
  for (; i < nargs; ++i) {
    if (p == len) break;
    int64_t n = 0;
    size_t body = 0;
    const Line line = header<'$'>(data, len, p, n, body);
    if (line == Line::kMore) break;
    ++steps;
    if (line == Line::kTooLong) return fail(ParseError::kBulkLineTooLong);
    // One compare for the good case: bulk_bound_ holds every limit on a bulk's length.
    if (line != Line::kOk || data[p] != '$' || static_cast<uint64_t>(n) > bulk_bound_)
        [[unlikely]] {
      const ParseResult r = bulkError(line, data[p], n);
      if (r.status == ParseStatus::kError) return r;
    }
    const uint64_t end = body + static_cast<uint64_t>(n) + 2;
    if (end > max_request) {
      // Framing is intact, so rather than close the connection we drop this request: everything
      // up to here now, the rest as it arrives (discard()).
      work_ += steps;
      state_ = State::kDiscard;
      offsets_.clear();
      discard_left_ = static_cast<uint64_t>(n) + 2;
      discard_args_left_ = nargs - i - 1;
      return {ParseStatus::kOversize, ParseError::kRequestTooLarge, body};
    }
    if (end > len) break;
    // The two bytes after the payload are skipped unchecked, as Redis does. Redis frames the
    // bytes we forward the same way, so what follows stays in step on both sides.
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

// Redis silently skips a count <= 0; the caller sees an empty request and skips it too.
ParseResult RequestParser::emptyMultibulk(const char* data, size_t frame_len, Request& out) {
  out.args.clear();
  out.frame = std::string_view(data, frame_len);
  out.is_inline = false;
  return {ParseStatus::kComplete, ParseError::kNone, frame_len};
}

// The rarer cases: inline commands, discarding, and nothing to parse.
ParseResult RequestParser::parseOther(const char* data, size_t len, Request& out) {
  switch (state_) {
    case State::kStart:
      break;
    case State::kCount:
    case State::kMultibulk:
      // Only reached when the caller handed back fewer bytes than we already parsed: a broken
      // contract. Start over rather than trust offsets past the end of its data.
      reset();
      if (len > 0 && data[0] == '*') return parse(data, len, out);
      break;
    case State::kInline:
      if (pos_ <= len) return parseInline(data, len, out);
      reset();
      break;
    case State::kDiscard:
      return discard(data, len);
  }
  if (len == 0) return {};
  return parseInline(data, len, out);
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

// Drops an oversize request as it arrives. Its elements are framed with the same rules (and the
// same errors) as in parse(), but nothing is kept: a partial length line is left unconsumed and
// read again on the next call (line_scan_ keeps long ones from being searched twice).
ParseResult RequestParser::discard(const char* data, size_t len) {
  size_t p = 0;
  for (;;) {
    if (discard_left_ > 0) {
      const uint64_t take = std::min<uint64_t>(discard_left_, len - p);
      p += static_cast<size_t>(take);
      discard_left_ -= take;
      if (discard_left_ > 0) return {ParseStatus::kIncomplete, ParseError::kNone, p};
    }
    if (discard_args_left_ == 0) {
      state_ = State::kStart;
      return {ParseStatus::kDiscarded, ParseError::kNone, p};
    }
    if (p == len) return {ParseStatus::kIncomplete, ParseError::kNone, p};
    int64_t n = 0;
    size_t body = 0;
    const Line line = header<'$'>(data, len, p, n, body);
    if (line == Line::kMore) {
      // The hint is relative to the line's start, which becomes offset 0 of the next call.
      return {ParseStatus::kIncomplete, ParseError::kNone, p};
    }
    ++work_;
    if (line == Line::kTooLong) return fail(ParseError::kBulkLineTooLong);
    const ParseResult r = bulkError(line, data[p], n);
    if (r.status == ParseStatus::kError) return r;
    p = body;
    discard_left_ = static_cast<uint64_t>(n) + 2;
    --discard_args_left_;
  }
}

}  // namespace corral::codec
