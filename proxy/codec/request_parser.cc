// RESP request framing: multibulk arrays of bulk strings and inline commands.
//
//   RequestParser::parse(data, len)           (the multibulk hot path, fresh or resumed)
//     "*N\r\n" ──> N x "$len\r\n" + bytes + "\r\n" ──> kComplete, args as views into data
//                     │ incomplete: remember (pos_, parsed_, offsets_), consume nothing
//                     └ over max_request_bytes: kOversize ──> discard() on the following calls
//   RequestParser::parseOther                 (everything else)
//     inline ──> parseInline: search '\n' (remember how far) ──> splitInline (sdssplitargs)
//     "*-1", discarding, a caller that broke the contract
//
// Every decision depends only on bytes already seen, so a frame gives the same result however it
// is split across calls (the fuzz targets check this). Hints are offsets from the frame start,
// never pointers, because the caller may move its buffer between calls.
#include <algorithm>
#include <cstring>

#include "proxy/codec/resp.h"
#include "proxy/codec/resp_lines.h"

namespace corral::codec {
namespace {

using detail::isCrlf;
using detail::kInt64Max;
using detail::Num;
using detail::parseLength;

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
}  // namespace corral::codec
