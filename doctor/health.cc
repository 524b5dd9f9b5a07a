// corral health: one GET on the admin endpoint, for probes in an image without curl.
//
//   --config FILE --> admin.listen (0.0.0.0 / :: -> loopback) --connect, GET /health or /ready
//   --> "HTTP/1.x 200" ? exit 0 : exit 1, one line on stderr
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "config/values.h"
#include "doctor/dial.h"
#include "doctor/doctor.h"

namespace corral::doctor {

namespace {

// GET path over fd; the whole response (HTTP/1.0: the server closes), or "" and *err.
std::string get(int fd, const std::string& path, Clock::time_point deadline, std::string* err) {
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!waitFor(fd, POLLOUT, deadline)) {
        *err = "timed out sending the request";
        return "";
      }
    } else {
      *err = std::string("send failed: ") + std::strerror(errno);
      return "";
    }
  }
  std::string resp;
  char buf[4096];
  // The status line and a little of the body are all we need.
  while (resp.size() < 64 * 1024) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      resp.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!waitFor(fd, POLLIN, deadline)) {
        *err = "timed out waiting for the answer";
        return "";
      }
    } else {
      *err = std::string("recv failed: ") + std::strerror(errno);
      return "";
    }
  }
  if (resp.empty()) *err = "connection closed without an answer";
  return resp;
}

}  // namespace

bool parseHealthArgs(const std::vector<std::string>& args, HealthOptions* o, std::string* err) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) {
      if (auto eq = a.find('='); eq != std::string::npos) {
        *out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= args.size()) {
        *err = a + " needs a value";
        return false;
      }
      *out = args[++i];
      return true;
    };
    auto is = [&](const char* flag) {
      return a == flag || a.rfind(std::string(flag) + "=", 0) == 0;
    };
    if (is("--config") || a == "-c") {
      if (!value(&o->config_path)) return false;
    } else if (a == "--ready") {
      o->ready = true;
    } else if (is("--timeout")) {
      std::string v, why;
      if (!value(&v)) return false;
      auto d = config::detail::durationWithReason(v, &why);
      if (!d || d->count() <= 0) {
        *err = "--timeout: " + (d ? std::string("must be more than 0") : why) + " (got " + v + ")";
        return false;
      }
      o->timeout = *d;
    } else {
      *err = "health: unknown argument: " + a;
      return false;
    }
  }
  return true;
}

int runHealth(const std::vector<std::string>& args, const std::string& default_config) {
  HealthOptions o;
  std::string err;
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::printf("usage: corral health ...\n%s\n%s", kSubcommandUsage, kSubcommandHelp);
    return 0;
  }
  if (!parseHealthArgs(args, &o, &err)) {
    std::fprintf(stderr, "corral: %s\n", err.c_str());
    return 2;
  }
  const std::string path = o.config_path.empty() ? default_config : o.config_path;
  config::LoadResult loaded = config::loadConfigFile(path);
  if (!loaded.config) {
    std::fprintf(stderr,
                 "corral health: %s does not load (%zu error(s); corral --check-config %s)\n",
                 path.c_str(), loaded.errors.size(), path.c_str());
    return 1;
  }
  const auto& listen = loaded.config->admin.listen;
  if (!listen) {
    std::fprintf(stderr,
                 "corral health: %s has no admin.listen: the admin endpoint is off, so there is "
                 "nothing to ask (set admin.listen, e.g. 127.0.0.1:9121)\n",
                 path.c_str());
    return 1;
  }
  if (listen->kind == config::ListenAddress::Kind::kTcp && listen->port == 0) {
    std::fprintf(stderr,
                 "corral health: admin.listen %s has port 0 (picked at startup): give it a fixed "
                 "port\n",
                 listen->text.c_str());
    return 1;
  }
  const std::string what = o.ready ? "/ready" : "/health";
  const Clock::time_point deadline = Clock::now() + o.timeout;
  const int fd = dial(*listen, deadline, &err);
  if (fd < 0) {
    std::fprintf(stderr, "corral health: GET %s: %s\n", what.c_str(), err.c_str());
    return 1;
  }
  const std::string resp = get(fd, what, deadline, &err);
  ::close(fd);
  if (resp.empty()) {
    std::fprintf(stderr, "corral health: GET %s: %s\n", what.c_str(), err.c_str());
    return 1;
  }
  // "HTTP/1.1 200 OK\r\n"
  const std::string status_line = resp.substr(0, resp.find("\r\n"));
  const size_t sp = status_line.find(' ');
  const std::string code = sp == std::string::npos ? "" : status_line.substr(sp + 1, 3);
  if (code == "200") return 0;
  std::string body;
  if (size_t b = resp.find("\r\n\r\n"); b != std::string::npos) {
    body = resp.substr(b + 4, 200);
    if (size_t nl = body.find('\n'); nl != std::string::npos) body.resize(nl);
  }
  std::fprintf(stderr, "corral health: GET %s answered %s%s%s\n", what.c_str(),
               status_line.substr(sp == std::string::npos ? 0 : sp + 1).c_str(),
               body.empty() ? "" : ": ", body.c_str());
  return 1;
}

}  // namespace corral::doctor
