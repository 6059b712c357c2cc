#include "bridge/server/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace hb {
namespace {

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

}  // namespace

void SslCtxDeleter::operator()(ssl_ctx_st* context) const { SSL_CTX_free(context); }

StatusOr<SslCtxPtr> MakeServerTlsContext(const WebTlsConfig& config) {
  SslCtxPtr context(SSL_CTX_new(TLS_server_method()));
  if (!context) return Status::Internal("TLS: " + OpenSslError());
  SSL_CTX* ctx = context.get();
  SSL_CTX_set_min_proto_version(ctx, config.min_version);
  SSL_CTX_set_max_proto_version(ctx, config.max_version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1) {
    return Status::InvalidArgument("tls_server_config.cert_file " + config.cert_file + ": " +
                                   OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::InvalidArgument("tls_server_config.key_file " + config.key_file + ": " +
                                   OpenSslError());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Status::InvalidArgument("tls_server_config: key_file does not match cert_file");
  }
  if (config.client_auth != ClientAuth::kNone) {
    if (SSL_CTX_load_verify_locations(ctx, config.client_ca_file.c_str(), nullptr) != 1) {
      return Status::InvalidArgument("tls_server_config.client_ca_file " + config.client_ca_file +
                                     ": " + OpenSslError());
    }
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(config.client_ca_file.c_str()));
    int mode = SSL_VERIFY_PEER;
    if (config.client_auth == ClientAuth::kRequireAndVerify) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  return context;
}

}  // namespace hb
