#include "bridge/cluster/rendezvous.h"

namespace hb {
namespace {

// FNV-1a over the bytes, then SplitMix64's finalizer: FNV alone mixes the
// last bytes poorly, so names that differ only at their end would cluster.
std::uint64_t Fnv1a(std::uint64_t hash, std::string_view bytes) {
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::uint64_t Finalize(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

std::uint64_t RendezvousWeight(std::string_view member, std::string_view service) {
  std::uint64_t hash = Fnv1a(0xcbf29ce484222325ULL, member);
  // A separator no id contains, so ("ab", "c") and ("a", "bc") differ.
  hash = Fnv1a(hash, std::string_view("\0", 1));
  hash = Fnv1a(hash, service);
  return Finalize(hash);
}

std::string RendezvousOwner(std::string_view service, const std::vector<std::string>& members) {
  const std::string* best = nullptr;
  std::uint64_t best_weight = 0;
  for (const std::string& member : members) {
    const std::uint64_t weight = RendezvousWeight(member, service);
    if (best == nullptr || weight > best_weight || (weight == best_weight && member < *best)) {
      best = &member;
      best_weight = weight;
    }
  }
  return best == nullptr ? std::string() : *best;
}

}  // namespace hb
