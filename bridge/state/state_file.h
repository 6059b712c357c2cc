#pragma once

// The saved state on disk (state.dir/state.json): what the engine had
// reported when the bridge last saved, so that a restart emits only what
// changed meanwhile (docs/design.md "Event model", Startup).
//
// The file is one header line, "hb-state 1 <crc32c of the rest, hex>", then
// the JSON of EncodeSavedState(). It is replaced atomically (write, fsync,
// rename, fsync the directory): a crash leaves the old or the new file.

#include <filesystem>
#include <optional>

#include "bridge/common/status.h"
#include "bridge/state/saved_state.h"

namespace hb {

// nullopt when there is no file (first start). kDataLoss when it is
// truncated, fails its checksum or does not decode, naming what is wrong.
StatusOr<std::optional<SavedState>> LoadStateFile(const std::filesystem::path& path);

Status SaveStateFile(const std::filesystem::path& path, const SavedState& state);

}  // namespace hb
