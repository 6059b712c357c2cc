#include "bridge/model/protocol_text.h"

#include <gtest/gtest.h>

#include <string>

namespace hb {
namespace {

std::string IdPart(std::string_view part) {
  std::string out;
  AppendIdPart(out, part);
  return out;
}

TEST(AppendIdPartTest, KeepsOrdinaryIdsAsTheyAre) {
  EXPECT_EQ(IdPart("payments-1"), "payments-1");
  EXPECT_EQ(IdPart("node-a.dc1:8080_x~y"), "node-a.dc1:8080_x~y");
}

TEST(AppendIdPartTest, EncodesWhatCouldBreakAHeaderOrTheIdsParts) {
  EXPECT_EQ(IdPart("inj-1\r\nX-Injected: yes"), "inj-1%0D%0AX-Injected:%20yes");
  EXPECT_EQ(IdPart(std::string("a\0b", 3)), "a%00b");
  EXPECT_EQ(IdPart("a/b"), "a%2Fb");
  EXPECT_EQ(IdPart("100%"), "100%25");
  EXPECT_EQ(IdPart("caf\xC3\xA9"), "caf%C3%A9");
  EXPECT_EQ(IdPart("\x7F"), "%7F");
}

TEST(AppendIdPartTest, DifferentPartsNeverJoinToTheSameId) {
  EXPECT_NE(IdPart("a/b") + "/" + IdPart("c"), IdPart("a") + "/" + IdPart("b/c"));
}

TEST(EventIdTest, EveryTextPartIsEncodedAndTheRestIsPlain) {
  EXPECT_EQ(InstanceEventId("dc1", "node-a", "payments-1", 2731, "instance.down"),
            "dc1/node-a/payments-1/2731/instance.down");
  EXPECT_EQ(InstanceEventId("dc 1", "n/a", "inj\r\n", 5, "instance.up"),
            "dc%201/n%2Fa/inj%0D%0A/5/instance.up");
  EXPECT_EQ(ServiceEventId("dc1", "pay/ments", 9, "service.down"),
            "dc1/pay%2Fments/9/service.down");
}

TEST(HeaderSafeTest, EncodesControlBytesOnly) {
  EXPECT_EQ(HeaderSafe("orders/orders-1"), "orders/orders-1");
  EXPECT_EQ(HeaderSafe("caf\xC3\xA9 x"), "caf\xC3\xA9 x");
  EXPECT_EQ(HeaderSafe("a\r\nb"), "a%0D%0Ab");
  EXPECT_EQ(HeaderSafe("dc1/n/inj-1%0D%0A/3/instance.up"), "dc1/n/inj-1%0D%0A/3/instance.up");
  EXPECT_EQ(HeaderSafe(std::string("\0", 1)), "%00");
}

TEST(HeaderValidationTest, NamesAreTokensAndValuesHaveNoControlBytes) {
  EXPECT_TRUE(IsValidHeaderName("X-Team"));
  EXPECT_FALSE(IsValidHeaderName(""));
  EXPECT_FALSE(IsValidHeaderName("X Team"));
  EXPECT_FALSE(IsValidHeaderName("X-Team:"));
  EXPECT_FALSE(IsValidHeaderName("X\r\nY"));
  EXPECT_TRUE(IsValidHeaderValue("platform team\tA"));
  EXPECT_FALSE(IsValidHeaderValue("a\r\nX-Injected: yes"));
  EXPECT_FALSE(IsValidHeaderValue(std::string("a\0", 2)));
}

TEST(LogSafeTest, KeepsPeerTextOnOneBoundedLine) {
  EXPECT_EQ(LogSafe("plain"), "plain");
  EXPECT_EQ(LogSafe("<html>\n<body>"), "<html>\\x0A<body>");
  EXPECT_EQ(LogSafe(std::string(300, 'x'), 10), std::string(10, 'x') + "...");
}

}  // namespace
}  // namespace hb
