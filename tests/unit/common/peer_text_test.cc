#include "bridge/common/peer_text.h"

#include <gtest/gtest.h>

#include <string>

namespace hb {
namespace {

TEST(SummarizePeerTextTest, AnHtmlErrorPageBecomesItsTitleOnOneLine) {
  const std::string page =
      "<!DOCTYPE html>\n<html>\n<head>\n  <title>502 Bad\n Gateway</title>\n</head>\n"
      "<body><h1>Bad Gateway</h1><p>upstream\r\nfailed</p></body>\n</html>\n";
  EXPECT_EQ(SummarizePeerText(page), "502 Bad Gateway");
  EXPECT_EQ(SummarizePeerText("<html><body><h1>Not\nFound</h1>\n<p>nginx</p></body></html>"),
            "Not Found nginx");
}

TEST(SummarizePeerTextTest, PlainTextKeepsItsWordsOnOneLine) {
  EXPECT_EQ(SummarizePeerText("Permission denied\n"), "Permission denied");
  EXPECT_EQ(SummarizePeerText("rpc error:\n\tNo path\x01to datacenter"),
            "rpc error: No path to datacenter");
  EXPECT_EQ(SummarizePeerText("  \n\r\n "), "");
  // JSON that happens to start with '<' is no page: only HTML is reduced.
  EXPECT_EQ(SummarizePeerText("<not html> a < b"), "<not html> a < b");
}

TEST(SummarizePeerTextTest, IsBoundedAtACharacterBoundaryAndReplacesInvalidBytes) {
  EXPECT_EQ(SummarizePeerText(std::string(1000, 'x'), 10), "xxxxxxxxxx...");
  // "é" is two bytes: never cut in half.
  EXPECT_EQ(SummarizePeerText("aaaaaaaaa\xC3\xA9", 10), "aaaaaaaaa...");
  EXPECT_EQ(SummarizePeerText("ok \xFF\xC3 end"), "ok ?? end");
}

}  // namespace
}  // namespace hb
