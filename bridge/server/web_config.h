#pragma once

// The web config file of Prometheus exporters (the exporter-toolkit format),
// so operators lock the bridge's port down as they do every exporter's:
//
//   tls_server_config:
//     cert_file: server.crt        # PEM, with the chain
//     key_file: server.key
//     client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default),
//                                                    # VerifyClientCertIfGiven
//     client_ca_file: clients.crt
//     min_version: TLS12           # TLS12 (default) or TLS13; max_version alike
//   http_server_config:
//     headers: {Strict-Transport-Security: max-age=31536000}
//   basic_auth_users:
//     prometheus: $2y$10$...       # bcrypt hashes only, as the toolkit requires
//
// Keys of the format that the bridge does not implement (cipher_suites,
// curve_preferences, client_allowed_sans, ...) are errors, never ignored:
// a setting that silently does nothing is a hole.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "bridge/common/status.h"

namespace hb {

enum class ClientAuth { kNone, kVerifyIfGiven, kRequireAndVerify };

struct WebTlsConfig {
  std::string cert_file;
  std::string key_file;
  ClientAuth client_auth = ClientAuth::kNone;
  std::string client_ca_file;  // required when client certificates are verified
  int min_version = 0x0303;    // TLS 1.2, as the toolkit's default
  int max_version = 0x0304;    // TLS 1.3
};

struct WebConfig {
  std::optional<WebTlsConfig> tls;
  std::map<std::string, std::string> response_headers;
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
};

// Parses the file's text; errors name the key and the file.
StatusOr<WebConfig> ParseWebConfig(std::string_view yaml, std::string_view file_name);
StatusOr<WebConfig> LoadWebConfig(const std::string& path);

}  // namespace hb
