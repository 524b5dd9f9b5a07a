#include "proxy/nearcache/near_reads.h"

#include "proxy/codec/resp.h"

namespace corral::nearcache {

namespace {

using codec::FrameReader;
using codec::ReplyType;

void appendNil(std::string& out, int proto) {
  if (proto == 3) {
    out += "_\r\n";
  } else {
    codec::appendNullBulk(out);
  }
}

bool isString(std::string_view entry) { return !entry.empty() && entry[0] == '$'; }
bool isHash(std::string_view entry) { return !entry.empty() && entry[0] == '%'; }

// The value bulk (its whole encoding) of `field` in a hash entry; empty if absent.
std::string_view hashValue(std::string_view entry, std::string_view field) {
  FrameReader rd(entry);
  int64_t pairs = 0;
  if (!rd.map(&pairs)) return {};
  for (int64_t i = 0; i < pairs; ++i) {
    std::string_view f, raw;
    bool nil = false;
    if (!rd.bulk(&f, &nil)) return {};
    if (!rd.skip(&raw)) return {};
    if (f == field) return raw;
  }
  return {};
}

// HGET's reply for `field` of a hash entry: its value bulk, or nil.
void appendField(std::string& out, std::string_view entry, std::string_view field, int proto) {
  const std::string_view v = hashValue(entry, field);
  if (v.empty()) {
    appendNil(out, proto);
  } else {
    out += v;
  }
}

bool convert(FrameReader& rd, std::string& out) {
  ReplyType t = ReplyType::kNull;
  if (!rd.peek(&t)) return false;
  switch (t) {
    case ReplyType::kNull:
      rd.skip();
      out += "$-1\r\n";
      return true;
    case ReplyType::kArray:
    case ReplyType::kSet:
    case ReplyType::kMap: {
      ReplyType at = t;
      int64_t n = 0;
      if (!rd.aggregate(&at, &n)) return false;
      if (n < 0) {
        out += "*-1\r\n";
        return true;
      }
      const int64_t elements = at == ReplyType::kMap ? 2 * n : n;
      codec::appendArrayHeader(out, static_cast<size_t>(elements));
      for (int64_t i = 0; i < elements; ++i) {
        if (!convert(rd, out)) return false;
      }
      return true;
    }
    case ReplyType::kBulkString:
    case ReplyType::kInteger:
    case ReplyType::kSimpleString:
    case ReplyType::kError: {
      std::string_view raw;
      if (!rd.skip(&raw)) return false;
      out += raw;
      return true;
    }
    default:
      return false;  // not in the replies of the reads above
  }
}

}  // namespace

NearRead nearReadOf(std::string_view name, size_t nargs) {
  if (nargs < 2) return NearRead::kNone;
  switch (name.size()) {
    case 3:
      if (name == "get" && nargs == 2) return NearRead::kGet;
      break;
    case 4:
      if (name == "mget") return NearRead::kMget;
      if (name == "hget" && nargs == 3) return NearRead::kHget;
      if (name == "hlen" && nargs == 2) return NearRead::kHlen;
      break;
    case 5:
      if (name == "hmget" && nargs >= 3) return NearRead::kHmget;
      break;
    case 6:
      if (name == "exists") return NearRead::kExists;
      if (name == "strlen" && nargs == 2) return NearRead::kStrlen;
      break;
    case 7:
      if (name == "hgetall" && nargs == 2) return NearRead::kHgetall;
      if (name == "hexists" && nargs == 3) return NearRead::kHexists;
      break;
    default:
      break;
  }
  return NearRead::kNone;
}

bool storable(std::string_view reply) {
  if (reply.size() < 4) return false;
  if (reply[0] == '$') return reply[1] != '-';
  if (reply[0] == '%') return reply[1] != '0';  // "%0\r\n": no such key
  return false;
}

bool appendFromEntry(NearRead read, std::string_view entry, std::span<const std::string_view> args,
                     int proto, std::string& out) {
  switch (read) {
    case NearRead::kGet:
      if (!isString(entry)) return false;
      out += entry;
      return true;
    case NearRead::kStrlen: {
      if (!isString(entry)) return false;
      FrameReader rd(entry);
      std::string_view v;
      bool nil = false;
      if (!rd.bulk(&v, &nil)) return false;
      codec::appendInteger(out, static_cast<int64_t>(v.size()));
      return true;
    }
    case NearRead::kHgetall: {
      if (!isHash(entry)) return false;
      if (proto == 3) {
        out += entry;
        return true;
      }
      FrameReader rd(entry);
      int64_t pairs = 0;
      if (!rd.map(&pairs)) return false;
      const size_t body = entry.find("\r\n") + 2;  // the elements are bulks in both protocols
      codec::appendArrayHeader(out, static_cast<size_t>(2 * pairs));
      out.append(entry.substr(body));
      return true;
    }
    case NearRead::kHget:
      if (!isHash(entry)) return false;
      appendField(out, entry, args[2], proto);
      return true;
    case NearRead::kHmget:
      if (!isHash(entry)) return false;
      codec::appendArrayHeader(out, args.size() - 2);
      for (size_t i = 2; i < args.size(); ++i) appendField(out, entry, args[i], proto);
      return true;
    case NearRead::kHlen: {
      if (!isHash(entry)) return false;
      FrameReader rd(entry);
      int64_t pairs = 0;
      if (!rd.map(&pairs)) return false;
      codec::appendInteger(out, pairs);
      return true;
    }
    case NearRead::kHexists:
      if (!isHash(entry)) return false;
      codec::appendInteger(out, hashValue(entry, args[2]).empty() ? 0 : 1);
      return true;
    default:
      return false;  // MGET and EXISTS are put together by the caller, key by key
  }
}

bool appendInProto(std::string_view reply, int proto, std::string& out) {
  if (proto == 3) {
    out += reply;
    return true;
  }
  FrameReader rd(reply);
  return convert(rd, out);
}

}  // namespace corral::nearcache
