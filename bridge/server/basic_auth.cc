#include "bridge/server/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>
#include <optional>

namespace hb {
namespace {

// A valid bcrypt hash of a random password, checked for unknown users so
// the answer takes as long as for a known one (no user enumeration).
constexpr char kDecoyHash[] = "$2b$10$Yd32APJltsb6wJzTf/6V1u67oYum5EwmGuYOat9ICPt0tC.LMaZja";
constexpr std::size_t kMaxRemembered = 256;
constexpr std::size_t kMaxHeader = 4096;

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > kMaxHeader) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(text.data()),
                                      static_cast<int>(text.size()));
  if (written < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's zero bytes too.
  std::size_t size = static_cast<std::size_t>(written);
  if (text.ends_with("==")) {
    size -= 2;
  } else if (text.ends_with('=')) {
    size -= 1;
  }
  out.resize(size);
  return out;
}

bool CryptMatches(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();
  const char* result = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  return result != nullptr && std::string_view(result).size() == hash.size() &&
         CRYPTO_memcmp(result, hash.data(), hash.size()) == 0;
}

}  // namespace

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

bool BasicAuth::Allows(const std::string* authorization) {
  if (!enabled()) return true;
  if (authorization == nullptr) return false;
  constexpr std::string_view kScheme = "Basic ";
  if (authorization->size() <= kScheme.size() ||
      std::string_view(*authorization).substr(0, kScheme.size()) != kScheme) {
    return false;
  }
  const auto decoded = DecodeBase64(std::string_view(*authorization).substr(kScheme.size()));
  if (!decoded) return false;
  const std::size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  return Verify(decoded->substr(0, colon), decoded->substr(colon + 1));
}

bool BasicAuth::Verify(const std::string& user, const std::string& password) {
  const auto found = users_.find(user);
  Digest digest{};
  {
    // The user's hash is part of the digest, so a pair stays verified only
    // for the hash it was verified against.
    const std::string hash = found == users_.end() ? std::string() : found->second;
    const std::string material = user + '\0' + password + '\0' + hash;
    SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest.data());
  }
  if (found != users_.end()) {
    MutexLock lock(&mutex_);
    if (verified_.contains(digest)) return true;
  }
  const bool ok = CryptMatches(password, found == users_.end() ? kDecoyHash : found->second) &&
                  found != users_.end();
  if (ok) {
    MutexLock lock(&mutex_);
    if (verified_.size() >= kMaxRemembered) verified_.clear();
    verified_.insert(digest);
  }
  return ok;
}

}  // namespace hb
