#include "bridge/common/redact.h"

#include <gtest/gtest.h>

namespace hb {
namespace {

TEST(RedactUrlTest, HidesUserInfoAndQueryButKeepsTheTarget) {
  EXPECT_EQ(RedactUrl("https://user:HookPW@hooks.example:8443/path?api_key=QUERYSECRET"),
            "https://******@hooks.example:8443/path?******");
  EXPECT_EQ(RedactUrl("http://admin:S3cretPW@127.0.0.1:8500"), "http://******@127.0.0.1:8500");
  // A password holding '@' is hidden whole.
  EXPECT_EQ(RedactUrl("http://u:p@ss@host/x"), "http://******@host/x");
  EXPECT_EQ(RedactUrl("https://host/x?token=1#frag"), "https://host/x?******#frag");
}

TEST(RedactUrlTest, LeavesUrlsWithoutSecretsAlone) {
  EXPECT_EQ(RedactUrl("http://127.0.0.1:8500"), "http://127.0.0.1:8500");
  EXPECT_EQ(RedactUrl("https://hooks.example/consul"), "https://hooks.example/consul");
  EXPECT_EQ(RedactUrl("not a url"), "not a url");
  EXPECT_EQ(RedactUrl(""), "");
}

}  // namespace
}  // namespace hb
