#include "bridge/server/request_head.h"

#include <gtest/gtest.h>

namespace hb {
namespace {

using State = HeadParse::State;

TEST(ParseRequestHeadTest, ParsesAGetWithItsQueryAndHeaders) {
  const auto parsed = ParseRequestHead(
      "GET /v1/instances?service=a%20b HTTP/1.1\r\nHost: x\r\nAccept:  */* \r\n\r\n", 8192);
  ASSERT_EQ(parsed.state, State::kComplete) << parsed.error;
  EXPECT_EQ(parsed.head.method, "GET");
  EXPECT_EQ(parsed.head.path, "/v1/instances");
  EXPECT_EQ(parsed.head.query, "service=a%20b");
  ASSERT_NE(parsed.head.Header("accept"), nullptr);
  EXPECT_EQ(*parsed.head.Header("accept"), "*/*");
  EXPECT_EQ(parsed.head.Header("missing"), nullptr);
}

TEST(ParseRequestHeadTest, WaitsForTheBlankLineWithinTheLimit) {
  EXPECT_EQ(ParseRequestHead("GET / HTTP/1.1\r\nHost: x\r\n", 8192).state, State::kIncomplete);
  EXPECT_EQ(ParseRequestHead("", 8192).state, State::kIncomplete);
  EXPECT_EQ(ParseRequestHead(std::string(100, 'a'), 100).state, State::kTooLarge);
  EXPECT_EQ(
      ParseRequestHead("GET / HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n", 64).state,
      State::kTooLarge);
}

TEST(ParseRequestHeadTest, RefusesWhatIsNotAStrictHttp1Head) {
  for (const char* bad :
       {"GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET * HTTP/1.1\r\n\r\n",
        "GET http://h/ HTTP/1.1\r\n\r\n", "GET / HTTP/2\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\n folded: x\r\n\r\n", "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", "GET /\x7f HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nnocolon\r\n\r\n"}) {
    EXPECT_EQ(ParseRequestHead(bad, 8192).state, State::kMalformed) << bad;
  }
}

TEST(ParseQueryTest, DecodesPairs) {
  const auto query = ParseQuery("service=a%20b&status=critical&&flag&x=1+2&bad=%zz");
  ASSERT_EQ(query.size(), 5U);
  EXPECT_EQ(query[0], (std::pair<std::string, std::string>{"service", "a b"}));
  EXPECT_EQ(query[1], (std::pair<std::string, std::string>{"status", "critical"}));
  EXPECT_EQ(query[2], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ(query[3], (std::pair<std::string, std::string>{"x", "1 2"}));
  EXPECT_EQ(query[4], (std::pair<std::string, std::string>{"bad", "%zz"}));
}

}  // namespace
}  // namespace hb
