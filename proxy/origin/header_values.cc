// Origin request headers and their secret files, validators and response caching headers (see
// header_values.h).
#include "proxy/origin/header_values.h"

#include <event2/keyvalq_struct.h>
#include <strings.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "config/logging.h"
#include "config/values.h"

#ifndef CORRAL_VERSION
#define CORRAL_VERSION "dev"
#endif

namespace corral::origin {
namespace {

constexpr int64_t kCheckIntervalMs = 1000;
constexpr std::streamsize kMaxFileBytes = 64 << 10;  // a header value, not a document

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("origin");
  return logger;
}

// Size, mtime and inode: a rotated Kubernetes secret (a new file behind a symlink) changes the
// inode, an edit in place the mtime or size.
std::string signatureOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ino);
}

// The file's text, or why not ("cannot read (No such file or directory)", "is larger than 64KiB").
bool readSmallFile(const std::string& path, std::string* text, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = std::string("cannot read (") + std::strerror(errno) + ")";
    return false;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  *text = buf.str();
  if (static_cast<std::streamsize>(text->size()) > kMaxFileBytes) {
    *why = "is larger than 64KiB";
    return false;
  }
  return true;
}

}  // namespace

FileValue::FileValue(std::string path, std::string initial)
    : path_(std::move(path)), value_(std::move(initial)), signature_(signatureOf(path_)) {}

std::shared_ptr<FileValue> FileValue::forPath(const std::string& path, const std::string& initial) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<FileValue>> files;
  std::lock_guard<std::mutex> lock(mu);
  std::weak_ptr<FileValue>& slot = files[path];
  if (auto existing = slot.lock()) return existing;
  auto made = std::make_shared<FileValue>(path, initial);
  slot = made;
  return made;
}

std::string FileValue::get(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (now_ms - checked_ms_ < kCheckIntervalMs) return value_;
  checked_ms_ = now_ms;
  std::string sig = signatureOf(path_);
  if (sig == signature_) return value_;
  signature_ = sig;
  std::string text;
  std::string why;
  if (readSmallFile(path_, &text, &why)) {
    const std::string_view v = config::detail::trimHeaderValue(text);
    if (const char* problem = config::detail::headerValueProblem(v)) {
      why = std::string("value ") + problem;
    } else if (v.empty()) {
      why = "is empty (being written?)";
    } else {
      value_ = std::string(v);
      ++reloads_;
      if (warned_) log()->info("origin header file usable again file={}", path_);
      warned_ = false;
      return value_;
    }
  }
  // Logged once per change of the file, never with its content.
  log()->warn("origin header file unusable, last value kept file={} err=\"{}\"", path_, why);
  warned_ = true;
  return value_;
}

uint64_t FileValue::reloads() const {
  auto* self = const_cast<FileValue*>(this);  // NOLINT: a read under the lock
  std::lock_guard<std::mutex> lock(self->mu_);
  return reloads_;
}

RequestHeaders::RequestHeaders(const std::vector<config::OriginHeader>& headers) {
  for (const config::OriginHeader& h : headers) {
    Entry e;
    e.name = h.name;
    if (h.source == config::OriginHeader::Source::kFile) {
      e.file = FileValue::forPath(h.file, h.value);
    } else {
      e.value = h.value;
    }
    if (strcasecmp(h.name.c_str(), "User-Agent") == 0) user_agent_ = true;
    if (strcasecmp(h.name.c_str(), "Accept") == 0) accept_ = true;
    entries_.push_back(std::move(e));
  }
}

void RequestHeaders::apply(evkeyvalq* out, int64_t now_ms) const {
  if (!user_agent_) evhttp_add_header(out, "User-Agent", "corral/" CORRAL_VERSION);
  if (!accept_) evhttp_add_header(out, "Accept", "*/*");
  for (const Entry& e : entries_) {
    if (e.file) {
      const std::string v = e.file->get(now_ms);
      evhttp_add_header(out, e.name.c_str(), v.c_str());
    } else {
      evhttp_add_header(out, e.name.c_str(), e.value.c_str());
    }
  }
}

void addValidator(evkeyvalq* out, const std::string& validator) {
  if (validator.size() < 2) return;
  // It replaces a configured header of the same name (origins.<name>.headers).
  evhttp_remove_header(out, "If-None-Match");
  evhttp_remove_header(out, "If-Modified-Since");
  // The validator came from the origin's own ETag / Last-Modified (CR, LF and NUL dropped by
  // httpValidator), so it cannot inject a header line.
  if (validator[0] == 'E') {
    evhttp_add_header(out, "If-None-Match", validator.c_str() + 1);
  } else if (validator[0] == 'L') {
    evhttp_add_header(out, "If-Modified-Since", validator.c_str() + 1);
  }
}

// The caching headers of a response (policies::HttpCacheHeaders). A header sent on several
// lines is joined with ", " (RFC 9110 5.3); for Expires, Date and Age that makes a value that
// does not parse, which the freshness rules read as "stale", as RFC 9111 allows.
policies::HttpCacheHeaders readCacheHeaders(const evkeyvalq* headers) {
  policies::HttpCacheHeaders h;
  const std::pair<const char*, std::string*> wanted[] = {
      {"Cache-Control", &h.cache_control},
      {"Expires", &h.expires},
      {"Date", &h.date},
      {"Age", &h.age},
      {"ETag", &h.etag},
      {"Last-Modified", &h.last_modified},
  };
  for (const evkeyval* kv = headers->tqh_first; kv != nullptr; kv = kv->next.tqe_next) {
    for (const auto& [name, out] : wanted) {
      if (strcasecmp(kv->key, name) != 0) continue;
      if (!out->empty()) out->append(", ");
      out->append(kv->value);
    }
  }
  return h;
}

}  // namespace corral::origin
