// Inline commands: a line of words split like Redis's sdssplitargs, for clients that type
// commands (telnet, redis-cli's inline mode).
//
//   parseInline: search '\n' in the first max_inline_bytes + 1 bytes (remember how far)
//                   │ none, or a NUL first (Redis's strchr stops there): wait; past the limit,
//                   │ kInlineTooLong
//                   └> splitInline (sdssplitargs) ──> kComplete, args in scratch_
#include <algorithm>
#include <cstring>

#include "proxy/codec/resp.h"

namespace corral::codec {
namespace {

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

ParseResult RequestParser::parseInline(const char* data, size_t len, Request& out) {
  // The line may hold max_inline_bytes before its '\n'. Searching only that far keeps the
  // outcome independent of how the bytes were split, and pos_ keeps us from searching twice.
  // Redis looks for the '\n' with strchr, so a NUL before it means the line never ends: we
  // wait like Redis does, until the line is too long.
  const size_t limit = limits_.max_inline_bytes;
  const size_t from = state_ == State::kInline ? pos_ : 0;
  const size_t until = std::min(len, limit + 1);
  const void* nl = nullptr;
  if (from < until && !line_nul_) {
    nl = std::memchr(data + from, '\n', until - from);
    const size_t end =
        nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - data) : until;
    if (std::memchr(data + from, '\0', end - from) != nullptr) {
      line_nul_ = true;
      nl = nullptr;
    }
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

// Splits an inline command into words exactly as Redis's sdssplitargs does. The line holds no
// NUL (parseInline never ends a line that does). Words go to scratch_, reserved up front for
// the whole line (no word is longer than its source), so the views stay valid while it fills.
// Returns false on unbalanced quotes.
bool RequestParser::splitInline(const char* line, size_t n, Request& out) {
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
