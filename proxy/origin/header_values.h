// The request headers of an origin (origins.<name>.headers), with values from the config, the
// environment (read at load) or a file re-read when it changes; a conditional request's
// validator header; the caching headers read from a response.
//
//   HttpOrigin::fetch --apply(headers)--> each header: literal | env value | FileValue::get()
//   FileValue::get: at most once a second stat(path) (size, mtime, inode); changed? read it again
//
// A file is shared by every origin and worker of the process that names it (one stat a second
// whatever the traffic). A file that disappears or turns unusable keeps the last good value and
// is warned about (without its content: values are secrets, never logged).
#pragma once

#include <event2/http.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/policy_config.h"
#include "policies/http_freshness.h"

namespace corral::origin {

// One secret file's current value. Thread-safe.
class FileValue {
 public:
  // The process's FileValue for path, created on first use with `initial` (what the loader read).
  static std::shared_ptr<FileValue> forPath(const std::string& path, const std::string& initial);
  // The value now; checks the file when the last check is at least a second old (now_ms of a
  // monotonic clock).
  std::string get(int64_t now_ms);
  uint64_t reloads() const;  // times a changed file was read (tests)

  FileValue(std::string path, std::string initial);

 private:
  std::mutex mu_;
  std::string path_;
  std::string value_;
  std::string signature_;
  int64_t checked_ms_ = 0;
  uint64_t reloads_ = 0;
  bool warned_ = false;  // the file is unusable and this was logged
};

// An origin's headers, ready to add to each request.
class RequestHeaders {
 public:
  explicit RequestHeaders(const std::vector<config::OriginHeader>& headers);
  // Adds User-Agent and Accept (unless configured) and every configured header.
  void apply(evkeyvalq* out, int64_t now_ms) const;

 private:
  struct Entry {
    std::string name;
    std::string value;                // literal or env
    std::shared_ptr<FileValue> file;  // or this
  };
  std::vector<Entry> entries_;
  bool user_agent_ = false;  // configured
  bool accept_ = false;
};

// A conditional request's header from policies::httpValidator's text: "E<etag>" ->
// If-None-Match, "L<date>" -> If-Modified-Since; "" adds nothing.
void addValidator(evkeyvalq* out, const std::string& validator);

// The caching headers of a response (Cache-Control, Expires, Date, Age, ETag, Last-Modified),
// for policies/http_freshness.
policies::HttpCacheHeaders readCacheHeaders(const evkeyvalq* headers);

}  // namespace corral::origin
