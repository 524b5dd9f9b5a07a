// FileValue: a secret file re-read when it changes, at most once a second; a bad new content
// keeps the last value.
#include "proxy/origin/header_values.h"

#include <doctest/doctest.h>
#include <event2/http.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace corral::origin {
namespace {

void writeFile(const std::string& path, const std::string& text) {
  // A new file renamed over the old one, as a rotated Kubernetes secret: a new inode.
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs(text.c_str(), f);
  std::fclose(f);
  REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0);
}

TEST_CASE("FileValue: re-read after a change, at most once a second; bad content ignored") {
  char dir[] = "/tmp/corral_header_test_XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/token";
  writeFile(path, "one\n");
  auto v = FileValue::forPath(path, "one");
  CHECK(FileValue::forPath(path, "ignored") == v);  // one per path per process
  CHECK(v->get(10'000) == "one");
  writeFile(path, "two\n");
  CHECK(v->get(10'500) == "one");  // checked less than a second ago
  CHECK(v->get(11'000) == "two");
  CHECK(v->reloads() == 1);
  writeFile(path, "three\nfour\n");  // two lines: refused
  CHECK(v->get(12'000) == "two");
  writeFile(path, "");  // empty (mid-write?): refused
  CHECK(v->get(13'000) == "two");
  std::filesystem::remove(path);
  CHECK(v->get(14'000) == "two");
  writeFile(path, "  five \r\n");
  CHECK(v->get(15'000) == "five");
  CHECK(v->reloads() == 2);
  std::filesystem::remove_all(dir);
}

TEST_CASE("addValidator: If-None-Match or If-Modified-Since, replacing a configured one") {
  evhttp_request* req = evhttp_request_new(nullptr, nullptr);
  REQUIRE(req != nullptr);
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "If-None-Match", "\"configured\"");
  addValidator(out, "");  // a plain GET: headers untouched
  CHECK(std::string(evhttp_find_header(out, "If-None-Match")) == "\"configured\"");
  addValidator(out, "E\"v1\"");
  CHECK(std::string(evhttp_find_header(out, "If-None-Match")) == "\"v1\"");
  CHECK(evhttp_find_header(out, "If-Modified-Since") == nullptr);
  addValidator(out, "LSun, 06 Dec 2026 10:00:00 GMT");
  CHECK(evhttp_find_header(out, "If-None-Match") == nullptr);
  CHECK(std::string(evhttp_find_header(out, "If-Modified-Since")) ==
        "Sun, 06 Dec 2026 10:00:00 GMT");
  evhttp_request_free(req);
}

}  // namespace
}  // namespace corral::origin
