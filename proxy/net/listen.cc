#include "proxy/net/listen.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace corral::net {
namespace {

constexpr int kBacklog = 511;

int bindTcp(const std::string& host, uint16_t port, uint16_t& bound_port, std::string& err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string p = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), p.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    err = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = std::strerror(errno);
    freeaddrinfo(res);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, kBacklog) != 0) {
    err = std::strerror(errno);
    ::close(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  bound_port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

int bindUnix(const std::string& path, std::string& err) {
  sockaddr_un un{};
  if (path.size() >= sizeof(un.sun_path)) {
    err = "unix socket path too long";
    return -1;
  }
  // A stale socket file from a previous run would make bind fail; remove only sockets.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = std::strerror(errno);
    return -1;
  }
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0 ||
      ::listen(fd, kBacklog) != 0) {
    err = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::vector<std::vector<ListenSocket>> bindListeners(
    const std::vector<config::ListenAddress>& addrs, int workers, std::string& err) {
  std::vector<std::vector<ListenSocket>> out(static_cast<size_t>(workers));
  auto closeAll = [&out] {
    for (auto& w : out) {
      for (auto& s : w) ::close(s.fd);
    }
    out.clear();
  };
  for (const config::ListenAddress& a : addrs) {
    if (a.kind == config::ListenAddress::Kind::kUnix) {
      int fd = bindUnix(a.path, err);
      if (fd < 0) {
        err = a.text + ": " + err;
        closeAll();
        return {};
      }
      for (int w = 0; w < workers; ++w) {
        int wfd = w == 0 ? fd : ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        out[static_cast<size_t>(w)].push_back(ListenSocket{wfd, "unix:" + a.path});
      }
      continue;
    }
    uint16_t port = a.port;
    for (int w = 0; w < workers; ++w) {
      uint16_t bound = 0;
      int fd = bindTcp(a.host, port, bound, err);
      if (fd < 0) {
        err = a.text + ": " + err;
        closeAll();
        return {};
      }
      port = bound;  // later workers join the port the first bind got
      const bool v6 = a.host.find(':') != std::string::npos;
      std::string text = (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(bound);
      out[static_cast<size_t>(w)].push_back(ListenSocket{fd, text, a.tls});
    }
  }
  return out;
}

}  // namespace corral::net
