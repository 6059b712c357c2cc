#include "bridge/common/curl_handles.h"

#include <mutex>

namespace hb {

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace hb
