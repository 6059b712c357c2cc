#pragma once

// libcurl ownership and its one-time global setup, shared by every user of
// libcurl (the Consul event loop, the webhook sink).

#include <curl/curl.h>

#include <memory>

namespace hb {

struct CurlEasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlList = std::unique_ptr<curl_slist, CurlListDeleter>;

// curl_global_init, once per process, before the first handle; libcurl
// leaves calling it to the application because it is not thread-safe in
// every build.
void InitCurlOnce();

}  // namespace hb
