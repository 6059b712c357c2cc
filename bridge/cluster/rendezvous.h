#pragma once

// Rendezvous (highest-random-weight) hashing: each service belongs to the
// member whose hash of (member, service) is highest. Every replica computes
// the same owner from the same member list, with no coordination, and when
// a member joins or leaves only the services it wins or held move (about
// 1/N of them), where `i % n` dealing moves nearly all.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hb {

// The weight of `member` for `service`: a 64-bit mix of both, stable across
// processes, builds and machines (never std::hash, which is neither).
std::uint64_t RendezvousWeight(std::string_view member, std::string_view service);

// The member with the highest weight for `service` (ties, practically
// impossible, go to the smaller member id); "" when `members` is empty.
std::string RendezvousOwner(std::string_view service, const std::vector<std::string>& members);

}  // namespace hb
