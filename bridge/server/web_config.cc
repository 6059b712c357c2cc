#include "bridge/server/web_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "bridge/model/protocol_text.h"

namespace hb {
namespace {

Status Invalid(std::string_view file, const std::string& key, const std::string& what) {
  return Status::InvalidArgument(std::string(file) + ": " + key + ": " + what);
}

// A map's keys must all be known: a typo must not turn TLS off.
Status CheckKeys(const YAML::Node& map, std::string_view file, const std::string& where,
                 const std::set<std::string>& supported,
                 const std::set<std::string>& unsupported = {}) {
  for (const auto& entry : map) {
    const auto key = entry.first.as<std::string>();
    if (supported.contains(key)) continue;
    const std::string path = where.empty() ? key : where + "." + key;
    if (unsupported.contains(key)) {
      return Invalid(file, path, "part of the exporter-toolkit format but not supported here");
    }
    return Invalid(file, path, "unknown key");
  }
  return Status::Ok();
}

StatusOr<int> TlsVersion(const YAML::Node& node, std::string_view file, const std::string& key,
                         int fallback) {
  if (!node) return fallback;
  const auto text = node.as<std::string>();
  if (text == "TLS12") return 0x0303;
  if (text == "TLS13") return 0x0304;
  return Invalid(file, key, "expected TLS12 or TLS13, got \"" + LogSafe(text) + "\"");
}

bool IsBcryptHash(std::string_view hash) {
  return hash.size() == 60 &&
         (hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$"));
}

StatusOr<WebConfig> Parse(const YAML::Node& root, std::string_view file) {
  WebConfig config;
  if (!root || root.IsNull()) return config;
  if (!root.IsMap()) return Invalid(file, "(top level)", "expected a mapping");
  if (Status keys = CheckKeys(root, file, "",
                              {"tls_server_config", "http_server_config", "basic_auth_users"});
      !keys.ok()) {
    return keys;
  }
  if (const YAML::Node tls = root["tls_server_config"]; tls && !tls.IsNull()) {
    if (!tls.IsMap()) return Invalid(file, "tls_server_config", "expected a mapping");
    if (Status keys = CheckKeys(tls, file, "tls_server_config",
                                {"cert_file", "key_file", "client_auth_type", "client_ca_file",
                                 "min_version", "max_version"},
                                {"cert", "key", "client_ca", "cipher_suites", "curve_preferences",
                                 "prefer_server_cipher_suites", "client_allowed_sans"});
        !keys.ok()) {
      return keys;
    }
    WebTlsConfig out;
    out.cert_file = tls["cert_file"] ? tls["cert_file"].as<std::string>() : "";
    out.key_file = tls["key_file"] ? tls["key_file"].as<std::string>() : "";
    if (out.cert_file.empty() || out.key_file.empty()) {
      return Invalid(file, "tls_server_config", "cert_file and key_file are both required");
    }
    const std::string auth =
        tls["client_auth_type"] ? tls["client_auth_type"].as<std::string>() : "NoClientCert";
    if (auth == "NoClientCert") {
      out.client_auth = ClientAuth::kNone;
    } else if (auth == "VerifyClientCertIfGiven") {
      out.client_auth = ClientAuth::kVerifyIfGiven;
    } else if (auth == "RequireAndVerifyClientCert") {
      out.client_auth = ClientAuth::kRequireAndVerify;
    } else {
      return Invalid(file, "tls_server_config.client_auth_type",
                     "expected NoClientCert, VerifyClientCertIfGiven or "
                     "RequireAndVerifyClientCert, got \"" +
                         LogSafe(auth) + "\"");
    }
    out.client_ca_file = tls["client_ca_file"] ? tls["client_ca_file"].as<std::string>() : "";
    if (out.client_auth != ClientAuth::kNone && out.client_ca_file.empty()) {
      return Invalid(file, "tls_server_config.client_ca_file",
                     "required to verify client certificates");
    }
    auto min = TlsVersion(tls["min_version"], file, "tls_server_config.min_version", 0x0303);
    if (!min.ok()) return min.status();
    auto max = TlsVersion(tls["max_version"], file, "tls_server_config.max_version", 0x0304);
    if (!max.ok()) return max.status();
    if (*min > *max) return Invalid(file, "tls_server_config", "min_version is above max_version");
    out.min_version = *min;
    out.max_version = *max;
    config.tls = std::move(out);
  }
  if (const YAML::Node http = root["http_server_config"]; http && !http.IsNull()) {
    if (!http.IsMap()) return Invalid(file, "http_server_config", "expected a mapping");
    if (Status keys = CheckKeys(http, file, "http_server_config", {"headers", "http2"});
        !keys.ok()) {
      return keys;
    }
    // http2 is accepted for compatibility: the bridge speaks HTTP/1.1, which
    // every client of /metrics also speaks.
    if (const YAML::Node headers = http["headers"]; headers && !headers.IsNull()) {
      if (!headers.IsMap())
        return Invalid(file, "http_server_config.headers", "expected a mapping");
      for (const auto& entry : headers) {
        const auto name = entry.first.as<std::string>();
        const auto value = entry.second.as<std::string>();
        if (!IsValidHeaderName(name) || !IsValidHeaderValue(value)) {
          return Invalid(file, "http_server_config.headers." + LogSafe(name),
                         "not a valid HTTP header");
        }
        config.response_headers[name] = value;
      }
    }
  }
  if (const YAML::Node users = root["basic_auth_users"]; users && !users.IsNull()) {
    if (!users.IsMap()) return Invalid(file, "basic_auth_users", "expected a mapping");
    for (const auto& entry : users) {
      const auto user = entry.first.as<std::string>();
      const auto hash = entry.second.as<std::string>();
      if (user.empty() || user.find(':') != std::string::npos || !IsValidHeaderValue(user)) {
        return Invalid(file, "basic_auth_users", "a user name must be non-empty, without ':'");
      }
      if (!IsBcryptHash(hash)) {
        return Invalid(file, "basic_auth_users." + LogSafe(user),
                       "expected a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); "
                       "make one with `htpasswd -nBC 10 USER`");
      }
      config.basic_auth_users[user] = hash;
    }
  }
  return config;
}

}  // namespace

StatusOr<WebConfig> ParseWebConfig(std::string_view yaml, std::string_view file_name) {
  try {
    return Parse(YAML::Load(std::string(yaml)), file_name);
  } catch (const YAML::Exception& error) {
    return Status::InvalidArgument(std::string(file_name) + ": " + error.what());
  }
}

StatusOr<WebConfig> LoadWebConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("server.web_config_file " + path + ": cannot read it");
  std::stringstream text;
  text << in.rdbuf();
  return ParseWebConfig(text.str(), path);
}

}  // namespace hb
