#pragma once

// The OpenSSL server context of the web config's tls_server_config.

#include <memory>

#include "bridge/common/status.h"
#include "bridge/server/web_config.h"

struct ssl_ctx_st;

namespace hb {

struct SslCtxDeleter {
  void operator()(ssl_ctx_st* context) const;
};
using SslCtxPtr = std::unique_ptr<ssl_ctx_st, SslCtxDeleter>;

// Loads the certificate chain, the key (checked against each other) and the
// client CAs; errors name the file and OpenSSL's reason.
StatusOr<SslCtxPtr> MakeServerTlsContext(const WebTlsConfig& config);

}  // namespace hb
