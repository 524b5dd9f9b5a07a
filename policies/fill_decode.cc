// fill.decode: origin bodies to stored values (fill_decode.h). A small strict JSON reader of
// our own rather than a library: fills need one object's members with their values kept as the
// origin wrote them (a library would re-print numbers and reorder or merge members), and it
// keeps the build free of a dependency for ~200 lines.
//
//   body ──Reader::object──> members (name unescaped, value: string unescaped | JSON text)
//        ──hash──> HGETALL's RESP2 reply      ──json-field──> one member's value
#include "policies/fill_decode.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "policies/fill.h"
#include "proxy/codec/resp.h"

namespace corral::policies {

namespace {

// A cursor over the body. Every method either consumes one well-formed element and returns
// true, or returns false with error_ set (the first failure wins).
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  void skipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool atEnd() const { return pos_ == s_.size(); }
  bool peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  size_t pos() const { return pos_; }
  std::string_view slice(size_t from) const { return s_.substr(from, pos_ - from); }

  bool fail(std::string_view what) {
    if (error_.empty()) error_ = std::string(what) + " at byte " + std::to_string(pos_);
    return false;
  }
  const std::string& error() const { return error_; }

  bool expect(char c) {
    if (!peek(c)) return fail(std::string("expected '") + c + "'");
    ++pos_;
    return true;
  }

  // A string ("..."), unescaped into *out (out may be null: validate only).
  bool string(std::string* out) {
    if (!expect('"')) return false;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return fail("control byte in a string");
      if (c != '\\') {
        if (out != nullptr) out->push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      if (++pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      char plain = 0;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          plain = e;
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = 0;
            if (!(s_.substr(pos_, 2) == "\\u")) return fail("lone high surrogate");
            pos_ += 2;
            if (!hex4(&lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("lone high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (out != nullptr) appendUtf8(cp, out);
          continue;
        }
        default:
          return fail("bad escape in a string");
      }
      if (out != nullptr) out->push_back(plain);
    }
    return fail("unterminated string");
  }

  // Any value, validated and skipped (its text is slice(start)).
  bool value(int depth) {
    if (depth > kMaxJsonDepth) return fail("nested too deeply");
    if (pos_ >= s_.size()) return fail("expected a value");
    switch (s_[pos_]) {
      case '"':
        return string(nullptr);
      case '{':
        return container('}', depth);
      case '[':
        return container(']', depth);
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

 private:
  bool hex4(uint32_t* v) {
    if (pos_ + 4 > s_.size()) return fail("short \\u escape");
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      uint32_t d = 0;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return fail("bad \\u escape");
      }
      *v = (*v << 4) | d;
    }
    return true;
  }

  static void appendUtf8(uint32_t cp, std::string* out) {
    auto put = [out](uint32_t b) { out->push_back(static_cast<char>(b)); };
    if (cp < 0x80) {
      put(cp);
    } else if (cp < 0x800) {
      put(0xC0 | (cp >> 6));
      put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      put(0xE0 | (cp >> 12));
      put(0x80 | ((cp >> 6) & 0x3F));
      put(0x80 | (cp & 0x3F));
    } else {
      put(0xF0 | (cp >> 18));
      put(0x80 | ((cp >> 12) & 0x3F));
      put(0x80 | ((cp >> 6) & 0x3F));
      put(0x80 | (cp & 0x3F));
    }
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool digits() {
    const size_t from = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > from || fail("expected a digit");
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  bool number() {
    if (peek('-')) ++pos_;
    if (peek('0')) {
      ++pos_;
    } else if (pos_ < s_.size() && s_[pos_] >= '1' && s_[pos_] <= '9') {
      digits();
    } else {
      return fail("expected a value");
    }
    if (peek('.')) {
      ++pos_;
      if (!digits()) return false;
    }
    if (peek('e') || peek('E')) {
      ++pos_;
      if (peek('+') || peek('-')) ++pos_;
      if (!digits()) return false;
    }
    return true;
  }

  // An object ('}': members "name": value) or an array (']': values), past its opening byte.
  bool container(char close, int depth) {
    ++pos_;
    skipSpace();
    if (peek(close)) {
      ++pos_;
      return true;
    }
    for (;;) {
      if (close == '}') {
        if (!string(nullptr)) return false;
        skipSpace();
        if (!expect(':')) return false;
        skipSpace();
      }
      if (!value(depth + 1)) return false;
      skipSpace();
      if (peek(',')) {
        ++pos_;
        skipSpace();
        continue;
      }
      return expect(close);
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

bool parseJsonObject(std::string_view body, size_t max_members, std::vector<JsonMember>* out,
                     std::string* error) {
  out->clear();
  if (body.size() > kMaxDecodeBytes) {
    *error = "body larger than " + std::to_string(kMaxDecodeBytes) + " bytes to decode";
    return false;
  }
  Reader rd(body);
  rd.skipSpace();
  if (!rd.peek('{')) {
    // Tell a JSON value of another type from something that is not JSON at all.
    const bool json = rd.value(1) && (rd.skipSpace(), rd.atEnd());
    *error = json ? "body is not a JSON object" : "body is not JSON (" + rd.error() + ")";
    return false;
  }
  std::unordered_set<std::string> seen;
  bool ok = rd.expect('{');
  rd.skipSpace();
  if (ok && rd.peek('}')) {
    rd.expect('}');
  } else {
    while (ok) {
      JsonMember m;
      ok = rd.string(&m.name);
      rd.skipSpace();
      ok = ok && rd.expect(':');
      rd.skipSpace();
      const size_t from = rd.pos();
      if (ok && rd.peek('"')) {
        ok = rd.string(&m.value);
      } else if (ok) {
        ok = rd.value(2);  // the object itself is depth 1
        if (ok) m.value.assign(rd.slice(from));
      }
      if (!ok) break;
      if (out->size() >= max_members) {
        *error = "body has more than " + std::to_string(max_members) + " members";
        out->clear();
        return false;
      }
      if (!seen.insert(m.name).second) {
        *error = "body has a duplicate member '" + m.name.substr(0, 64) + "'";
        out->clear();
        return false;
      }
      out->push_back(std::move(m));
      rd.skipSpace();
      if (rd.peek(',')) {
        rd.expect(',');
        rd.skipSpace();
        continue;
      }
      ok = rd.expect('}');
      break;
    }
  }
  if (ok) {
    rd.skipSpace();
    if (!rd.atEnd()) ok = rd.fail("bytes after the object");
  }
  if (!ok) {
    *error = "body is not JSON (" + rd.error() + ")";
    out->clear();
    return false;
  }
  return true;
}

void encodeHashReply(std::span<const JsonMember> members, std::string* out) {
  out->clear();
  codec::appendArrayHeader(*out, members.size() * 2);
  for (const JsonMember& m : members) {
    codec::appendBulk(*out, m.name);
    codec::appendBulk(*out, m.value);
  }
}

void decodeOriginBody(const FillDecode& d, OriginResult& r) {
  if (r.kind != OriginResult::Kind::kValue || d.kind == FillDecode::Kind::kRaw) return;
  std::vector<JsonMember> members;
  std::string error;
  const size_t cap = d.kind == FillDecode::Kind::kHash ? kMaxHashFields : SIZE_MAX;
  if (!parseJsonObject(r.body, cap, &members, &error)) {
    r.kind = OriginResult::Kind::kError;
    r.error = std::move(error);
    r.body.clear();
    return;
  }
  if (d.kind == FillDecode::Kind::kHash) {
    if (members.empty()) {
      r.kind = OriginResult::Kind::kNotFound;  // {}: no hash to store, as a 404
      r.body.clear();
      return;
    }
    encodeHashReply(members, &r.body);
    return;
  }
  auto it = std::find_if(members.begin(), members.end(),
                         [&](const JsonMember& m) { return m.name == d.field; });
  if (it == members.end()) {
    r.kind = OriginResult::Kind::kError;
    r.error = "body has no member '" + d.field.substr(0, 64) + "'";
    r.body.clear();
    return;
  }
  r.body = std::move(it->value);
}

void compileFillShape(const config::PolicySpec& p, const std::string& path, bool hash,
                      FillPolicy& f, std::vector<config::ConfigError>* errors) {
  const std::string at = path + ".fill";
  if (!hash) {
    if (p.fill.decode == config::FillDecodeKind::kJsonField) {
      f.decode.kind = FillDecode::Kind::kJsonField;
      f.decode.field = p.fill.decode_field;
    }
    return;
  }
  f.decode.kind = FillDecode::Kind::kHash;
  for (const std::string& c : p.fill.commands) {
    if (c != "hgetall" && c != "hget") {
      errors->push_back(config::configError(
          p.where, at + ".commands",
          "mixes " + c + " with HGETALL/HGET: a policy's keys hold strings or hashes, not both"));
      break;
    }
  }
  if (p.fill.decode != config::FillDecodeKind::kRaw) {
    errors->push_back(config::configError(
        p.where, at + ".decode",
        "does not apply to HGETALL/HGET fills (the JSON object body is the hash)"));
  }
  if (f.window_ms() > 0 || f.xfetch) {
    errors->push_back(config::configError(
        p.where, path + ".freshness",
        "stale_while_revalidate, stale_if_error and early_refresh are not supported with "
        "HGETALL/HGET fills yet"));
  }
  if (f.ttl_from_origin) {
    // Validators and 304 revalidation are kept beside string values only (fill_freshness.h).
    errors->push_back(config::configError(
        p.where, path + ".ttl.from_origin",
        "is not supported with HGETALL/HGET fills yet (the TTL of a hash fill is ttl.default)"));
  }
}

}  // namespace corral::policies
