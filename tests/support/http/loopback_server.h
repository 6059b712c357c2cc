#pragma once

// Binding cpp-httplib servers for test peers that take bursts of
// connections: hundreds of watches start at once.

#include <httplib.h>

#include <string>
#include <thread>

namespace hb {

// Binds `server` to host:port (port 0 = any) and returns the port, or 0 when
// the bind failed. Debian ships cpp-httplib as a compiled library whose listen
// backlog is 5, so a burst of connects overflows it and each dropped SYN
// costs the client a second or more of retransmits; the socket is listened
// on again with the kernel's maximum backlog.
int BindWithDeepBacklog(httplib::Server& server, const std::string& host, int port = 0);

// A loopback port nothing listens on now (bound once to learn it, then
// closed), for peers that cannot be told "any port" and report which.
int UnusedLoopbackPort();

// Serves a bound `server` on a new thread and returns once it runs:
// httplib's stop() before its loop started is lost, and join() would hang.
std::thread ListenInBackground(httplib::Server& server);

}  // namespace hb
