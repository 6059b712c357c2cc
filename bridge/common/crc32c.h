#pragma once

// CRC-32C (Castagnoli), the checksum of the on-disk records (spool, saved
// state): it catches torn writes and flipped bits, which is all a local
// file needs; it is not a defence against tampering.

#include <cstdint>
#include <string_view>

namespace hb {

// `seed` continues a checksum over several pieces: Crc32c(b, Crc32c(a)) is
// the checksum of a followed by b.
std::uint32_t Crc32c(std::string_view data, std::uint32_t seed = 0);

}  // namespace hb
