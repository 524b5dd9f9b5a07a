// RESP2/RESP3 framing over contiguous byte spans. No I/O, no allocation per frame.
//
//   client bytes --> RequestParser::parse --> Request{args as views, frame bytes}
//   upstream bytes --> ReplyParser::parse --> {status, consumed, type}   (bytes forwarded verbatim)
//   one complete reply --> FrameReader --> its elements (the few replies corral reads itself)
//
// Both parsers are restartable: when a frame is incomplete they consume nothing (unless they
// are dropping a frame over a limit, see kOversize) and keep a resume hint (offsets relative to
// the frame start), so a frame that arrives in many pieces is scanned once. The caller may move
// the unconsumed bytes (compact or grow its buffer) between calls as long as the frame start's
// contents are unchanged; offsets, not pointers, are kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corral::codec {

enum class ParseStatus : uint8_t {
  kComplete,    // one frame parsed; `consumed` bytes belong to it
  kIncomplete,  // need more bytes; consumed == 0 (except while discarding, see kOversize)
  kOversize,    // a frame over corral's limits but still well framed: see RequestParser
  kDiscarded,   // the end of an oversize frame was reached; `consumed` bytes dropped
  kError,       // framing lost: reply the error and close the connection
};

enum class ParseError : uint8_t {
  kNone,
  // Requests, answered with Redis 7.0.15's words (errorText) and a closed connection:
  kInvalidMultibulkLength,  // count line not a number (string2ll) or above INT_MAX
  kInvalidBulkLength,       // bulk length not a number, negative, or over max_bulk_bytes
  kExpectedDollar,          // an element is not a bulk string (ParseResult::got: what it was)
  kMultibulkLineTooLong,    // no end to the count line in max_inline_bytes
  kBulkLineTooLong,         // no end to a bulk length line in max_inline_bytes
  kUnauthenticatedMultibulkLength,  // over 10 elements before AUTH (setAuthRequired)
  kUnauthenticatedBulkLength,       // a bulk over 16384 bytes before AUTH
  kUnbalancedQuotes,                // inline command with unbalanced quotes
  kInlineTooLong,                   // inline line (no \n yet) longer than max_inline_bytes
  // corral's own limits, reported with kOversize (the frame is dropped, the connection kept):
  kRequestTooLarge,  // whole request over max_request_bytes
  kTooManyArgs,      // more elements than max_args
  // Replies:
  kReplyTooLarge,   // one reply over max_reply_bytes (reported with kOversize)
  kBadReplyType,    // unknown RESP type byte in a reply
  kBadReplyLength,  // malformed length/number line in a reply
};

// Error text for a parse error, without the leading '-' and the CRLF, e.g.
// "ERR Protocol error: invalid multibulk length". For kExpectedDollar prefer the overload below:
// Redis names the byte it found ("expected '$', got ':'"), which a ParseError alone cannot.
std::string_view errorText(ParseError e);

struct Limits {
  uint32_t max_args = 1024 * 1024;                   // elements in one request array
  uint64_t max_bulk_bytes = 512ull * 1024 * 1024;    // one bulk string (Redis proto-max-bulk-len)
  uint64_t max_request_bytes = 64ull * 1024 * 1024;  // whole request frame
  uint32_t max_inline_bytes = 64 * 1024;             // inline line; request length lines
  // One reply. 512 MiB: a GET of the largest string Redis stores (proto-max-bulk-len) passes.
  uint64_t max_reply_bytes = 512ull * 1024 * 1024;
};

// One parsed request. `args` are views into the caller's buffer and `frame` is the whole
// request's bytes (for inline commands, the raw line). Valid until the caller's buffer is
// modified, i.e. for the current loop turn only.
struct Request {
  std::vector<std::string_view> args;  // capacity is reused across frames (no per-frame alloc)
  std::string_view frame;
  bool is_inline = false;
};

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  ParseError error = ParseError::kNone;
  size_t consumed = 0;
  char got = 0;  // kExpectedDollar: the byte found where '$' was expected
};

// The whole error text of a result, e.g. "ERR Protocol error: expected '$', got ':'" (Redis
// writes a CR or LF byte as a space). Points to static storage.
std::string_view errorText(const ParseResult& r);

// Frames client requests: RESP multibulk arrays of bulk strings and inline commands (a line of
// space-separated words with Redis's quoting rules: "..." with \n \t \xHH escapes and '...').
//
// What is accepted, refused, skipped and when the connection closes follows Redis 7.0.15's
// processMultibulkBuffer/processInlineBuffer byte for byte (tests/integration/
// test_protocol_parity.py compares the two), so a client sees the same through corral:
//   - A length line ends at its first '\r' once one more byte has arrived; that byte is not
//     checked, nor are the two bytes after a bulk's payload (Redis skips them). corral forwards
//     such frames verbatim, and Redis frames them the same way.
//   - Numbers follow string2ll: no '+', no leading zeros, no "-0", at most 20 characters.
//   - A count <= 0 ("*0", "*-1", "*-5") gives kComplete with no args: skip it, as Redis does.
//     An empty or blank inline line is skipped the same way.
//   - A line that holds a NUL before its end never ends (Redis searches with strchr): past
//     max_inline_bytes it fails (kInlineTooLong, k*LineTooLong).
//   - The element's '$' is checked once its length line is complete, as Redis does.
// Where corral differs, it is one of its own limits: max_request_bytes and max_args (kOversize,
// below), and max_bulk_bytes / max_inline_bytes when configured away from Redis's defaults.
//
// Oversize requests: when a well-framed request's size (sum of its declared lengths) is known to
// exceed max_request_bytes, or its count exceeds max_args, parse() returns kOversize once, with
// `consumed` = bytes dropped so far, and switches to discarding: following calls return
// kIncomplete with consumed > 0 as they drop bytes, then kDiscarded with the last bytes of that
// request. The connection stays usable.
//
// Details: an inline `frame` includes its '\n'; inline args are views into a scratch buffer
// inside the parser (valid until the next parse call), so re-encode inline commands
// (appendCommand) rather than forward their raw line. kError consumes nothing and resets the
// parser. Not thread-safe; one parser per connection.
class RequestParser {
 public:
  explicit RequestParser(const Limits& limits = Limits{}) : limits_(limits) { updateBulkBound(); }

  // Parses at most one request from data[0, len). On kComplete fills `out` (views into data).
  ParseResult parse(const char* data, size_t len, Request& out);

  void setLimits(const Limits& limits) {
    limits_ = limits;
    updateBulkBound();
  }
  // While true, Redis's limits for a client that has not authenticated apply: more than 10
  // elements or a bulk over 16384 bytes is kError (kUnauthenticated*). Set it while the server
  // asks for AUTH and the client has not passed it.
  void setAuthRequired(bool required) {
    auth_required_ = required;
    updateBulkBound();
  }
  // True while a partially received frame is remembered (for buffer bookkeeping and tests):
  // a count line without its end, a multibulk past its count line, an inline line without its
  // '\n', or a discard.
  bool midFrame() const { return state_ != State::kStart; }
  void reset();
  // Parsing work since construction: element headers parsed plus bytes searched for a line end.
  // For tests and benchmarks: a frame fed in many pieces must cost about as much as fed whole.
  uint64_t scanWork() const { return work_; }

 private:
  enum class State : uint8_t { kStart, kCount, kMultibulk, kInline, kDiscard };
  enum class Line : uint8_t { kOk, kBadNumber, kMore, kTooLong };
  void updateBulkBound();
  template <char kType>
  Line header(const char* data, size_t len, size_t h, int64_t& value, size_t& next);
  Line headerSlow(const char* data, size_t len, size_t h, int64_t& value, size_t& next);
  ParseResult bulkError(Line line, char type, int64_t n);
  ParseResult parseCount(const char* data, size_t len, Request& out);
  ParseResult parseOther(const char* data, size_t len, Request& out);
  ParseResult emptyMultibulk(const char* data, size_t frame_len, Request& out);
  ParseResult suspendMultibulk(const char* data, size_t pos, uint32_t parsed, Request& out);
  ParseResult parseInline(const char* data, size_t len, Request& out);
  bool splitInline(const char* line, size_t n, Request& out);
  ParseResult discard(const char* data, size_t len);
  ParseResult fail(ParseError e, char got = 0);

  Limits limits_;
  State state_ = State::kStart;
  bool auth_required_ = false;
  uint64_t bulk_bound_ = 0;  // the largest bulk length that is not an error, all limits applied
  // The length line being read starts at offset h: bytes [h, h + line_scan_) hold no '\r' (0:
  // not searched yet); line_nul_: a NUL came first, so the line never ends. Reset per line.
  bool line_nul_ = false;
  size_t line_scan_ = 0;
  // Resume hint for a partly received multibulk (offsets are relative to the frame start).
  uint32_t nargs_ = 0;   // declared element count
  uint32_t parsed_ = 0;  // elements fully parsed so far
  size_t pos_ = 0;       // offset where parsing resumes (inline: bytes already searched for \n)
  std::vector<std::pair<size_t, size_t>> offsets_;  // (offset, length) of args parsed earlier
  // Discarding an oversize request (offsets relative to the caller's current data start).
  uint64_t discard_left_ = 0;       // bytes of the current bulk (data + CRLF) still to drop
  uint32_t discard_args_left_ = 0;  // whole elements still to drop after the current one
  std::string scratch_;             // unescaped inline arguments (inline requests only)
  uint64_t work_ = 0;
};

// RESP2 and RESP3 reply types, by their first byte.
enum class ReplyType : uint8_t {
  kSimpleString,  // +
  kError,         // -
  kInteger,       // :
  kBulkString,    // $ (including the RESP2 null bulk $-1)
  kArray,         // * (including the RESP2 null array *-1)
  kNull,          // _
  kBoolean,       // #
  kDouble,        // ,
  kBigNumber,     // (
  kBulkError,     // !
  kVerbatim,      // =
  kMap,           // %
  kSet,           // ~
  kAttribute,     // | (an attribute is framed together with the reply that follows it)
  kPush,          // >
};

struct ReplyResult {
  // kComplete, kIncomplete, kOversize (the reply is too large: kReplyTooLarge), kDiscarded or
  // kError.
  ParseStatus status = ParseStatus::kIncomplete;
  ParseError error = ParseError::kNone;
  size_t consumed = 0;
  ReplyType type = ReplyType::kSimpleString;  // of the top-level value (after any attribute)
};

// Frames one reply (any RESP2/RESP3 type, at any depth) without decoding it. Replies come from
// Redis, so their framing is trusted: nesting is followed as deep as it goes, at no cost (the
// parser counts the elements still expected; it keeps no stack), and only what cannot be a
// Redis reply is an error.
//
// Restartable: an incomplete reply consumes nothing and keeps a resume hint, so a 1 MiB bulk or
// a 100k-element array arriving in pieces is scanned once.
//
// Too large: once a reply is known to be longer than max_reply_bytes (an element, a bulk's
// declared payload included, would end past it), parse() returns kOversize with `consumed` = the
// bytes of the reply before that element, and switches to discarding: following calls drop the
// rest of that reply as it arrives (kIncomplete with consumed > 0; a partial element header is
// left in place), then return kDiscarded with its last bytes. It is framed exactly as a kept reply
// would be, so the connection stays in step, and memory stays bounded by max_reply_bytes.
//
// Streamed RESP3 values ("$?", "*?") are rejected (kBadReplyLength): Redis 7 does not send them.
// Only "$-1" and "*-1" may have a negative length. kError consumes nothing and resets the
// parser. Replies have no depth limit.
class ReplyParser {
 public:
  explicit ReplyParser(const Limits& limits = Limits{}) : limits_(limits) {}
  ReplyResult parse(const char* data, size_t len);
  // Takes effect for the next reply: call it between replies (!midFrame()).
  void setLimits(const Limits& limits) { limits_ = limits; }
  void reset();
  // True while a partially received reply is remembered, or one is being discarded.
  bool midFrame() const { return started_ || discarding_; }
  // Parsing work since construction (headers parsed plus bytes searched for a line end); tests.
  uint64_t scanWork() const { return work_; }

 private:
  // What an element's header line says (Kind, in reply_parser.cc).
  struct Header;
  enum class Read : uint8_t { kOk, kMore, kBad };
  bool quick(const char* data, size_t len, ReplyResult& r);
  Read readHeader(const char* data, size_t len, size_t p, Header& h, ParseError& error);
  void countAggregate(const Header& h);
  ReplyResult suspend(size_t pos);
  ReplyResult oversize(size_t element_start);
  ReplyResult discard(const char* data, size_t len);
  ReplyResult skipPayload(const char* data, size_t len, size_t& p);
  ReplyResult fail(ParseError e);
  ReplyResult done(ParseStatus status, size_t consumed);

  Limits limits_;
  size_t pos_ = 0;        // resume offset relative to the frame start (an element start)
  size_t line_scan_ = 0;  // simple line at pos_: offset from which to search for its \n
  // Elements still expected before the reply ends, counting the one at pos_: the sum of what
  // every open aggregate still holds. It replaces a stack of levels, so depth costs nothing.
  // Saturates at 2^63 (a count no real input can work off).
  uint64_t pending_ = 0;
  bool started_ = false;
  bool typed_ = false;  // top_type_ is known (the reply's first value that is not an attribute)
  ReplyType top_type_ = ReplyType::kSimpleString;
  // Discarding a reply over max_reply_bytes (offsets relative to the caller's current data).
  bool discarding_ = false;
  bool in_line_ = false;  // inside a simple line, its type byte already dropped
  bool line_cr_ = false;  // in_line_: the last byte dropped was '\r'
  uint64_t skip_ = 0;     // bytes of a bulk payload plus its CRLF still to drop
  uint64_t work_ = 0;
};

// Reads the elements of one complete reply frame (RESP2 or RESP3, as ReplyParser framed it), for
// the few replies corral looks into itself: its upstream handshake (CLIENT ID, CONFIG GET
// databases, INFO), CONFIG GET redaction, fill scripts' answers, MGET and GET+PTTL of fill
// policies, pub/sub frames. Off the forwarding path; allocation-free.
//
// Reads go front to back. Each checks the next element's type and bytes (numbers as strictly as
// Redis writes them, the CRLF after a payload) and advances past it; a read that does not match
// returns false, and so does every read after it, so a chain of reads can be checked once at
// the end. An aggregate header read only moves into it: read or skip() its elements next. Views
// point into the frame and live as long as it does.
class FrameReader {
 public:
  explicit FrameReader(std::string_view frame) : s_(frame) {}

  // The type of the next element, without reading it (false at the end or after a failure).
  // An attribute ("|") is reported as kAttribute: skip() it to reach the value it annotates.
  bool peek(ReplyType* type) const;

  bool array(int64_t* n);  // "*<n>" (-1: a nil array)
  bool map(int64_t* n);    // "%<n>": n key-value pairs (2n elements) follow
  bool push(int64_t* n);   // "><n>"
  // Any aggregate header ("*", "%", "~" or ">"); `n` as written (a map's pairs). "*-1" gives -1.
  bool aggregate(ReplyType* type, int64_t* n);
  bool integer(int64_t* v);  // ":<v>"
  // "$<n>\r\n<bytes>\r\n": *nil for "$-1"; raw (optional): the element's whole encoding.
  bool bulk(std::string_view* bytes, bool* nil, std::string_view* raw = nullptr);
  bool simple(std::string_view* text);  // "+<text>"
  bool error(std::string_view* text);   // "-<text>", or a RESP3 bulk error "!<n>\r\n<text>"
  // "=<n>\r\n<fmt>:<text>": the text without its three-letter format ("txt", "mkd").
  bool verbatim(std::string_view* text, std::string_view* format = nullptr);
  // Any string value: a bulk string (not nil), a simple string, or a verbatim string's text.
  bool string(std::string_view* text);
  // One whole element of any type, nested ones and leading attributes included; raw
  // (optional): its encoding.
  bool skip(std::string_view* raw = nullptr);

  bool ok() const { return ok_; }
  bool atEnd() const { return ok_ && pos_ == s_.size(); }

 private:
  bool line(char type, std::string_view* text);
  bool number(char type, int64_t* v);
  bool payload(char type, int64_t* n, std::string_view* bytes);
  bool failed() { return ok_ = false; }
  std::string_view s_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// What the session code needs from one pub/sub frame (a RESP2 array or a RESP3 push): its kind
// and, for the (un)subscribe confirmations, the subscription count. Views point into the frame.
struct PubsubFrame {
  bool has_kind = false;   // the first element is a bulk string:
  std::string_view kind;   //   "message", "pmessage", "smessage", "subscribe", "invalidate", ...
  bool has_count = false;  // the last element is an integer:
  int64_t count = 0;       //   the subscriptions left after a (un)subscribe
};

// Reads one complete frame that is a "*" array or ">" push of at least one element (and nothing
// after it). Returns false, with *out reset, for anything else: a nil or empty array, another
// type, trailing or malformed bytes. Allocation-free: the elements in between are skipped.
bool readPubsubFrame(std::string_view frame, PubsubFrame* out);

// Appends the RESP encodings used by local answers and errors to `out` (not on the forward path).
void appendSimple(std::string& out, std::string_view s);   // +s\r\n
void appendError(std::string& out, std::string_view msg);  // -msg\r\n (msg without '-')
void appendInteger(std::string& out, int64_t v);           // :v\r\n
void appendBulk(std::string& out, std::string_view s);     // $len\r\ns\r\n
void appendNullBulk(std::string& out);                     // $-1\r\n
void appendArrayHeader(std::string& out, size_t n);        // *n\r\n
// Encodes a command as a RESP array of bulk strings (for requests corral makes itself).
void appendCommand(std::string& out, const std::vector<std::string_view>& args);

}  // namespace corral::codec
