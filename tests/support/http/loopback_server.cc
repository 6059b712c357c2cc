#include "tests/support/http/loopback_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <stdexcept>

namespace hb {

int BindWithDeepBacklog(httplib::Server& server, const std::string& host, int port) {
  socket_t bound = INVALID_SOCKET;
  server.set_socket_options([&bound](socket_t sock) {
    httplib::default_socket_options(sock);
    bound = sock;
  });
  const int result =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : 0);
  server.set_socket_options(httplib::default_socket_options);
  // Linux raises the backlog of a socket that is already listening.
  if (result > 0 && bound != INVALID_SOCKET) ::listen(bound, SOMAXCONN);
  return result > 0 ? result : 0;
}

int UnusedLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  ::close(fd);
  if (!bound) throw std::runtime_error("cannot bind 127.0.0.1:0");
  return ntohs(address.sin_port);
}

std::thread ListenInBackground(httplib::Server& server) {
  auto ended = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([&server, ended] {
    server.listen_after_bind();
    *ended = true;
  });
  while (!server.is_running() && !*ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return thread;
}

}  // namespace hb
