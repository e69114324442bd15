#include "echo_protocol.h"

#include <gtest/gtest.h>

namespace sluice::echo {
namespace {

TEST(echo_protocol, commands_are_case_insensitive_and_crlf_tolerant) {
  EXPECT_EQ(parse_line("PING").cmd, command::ping);
  EXPECT_EQ(parse_line("ping\r").cmd, command::ping);
  auto r = parse_line("Echo hello world\r");
  EXPECT_EQ(r.cmd, command::echo);
  EXPECT_EQ(r.arg, "hello world");
  EXPECT_EQ(parse_line("ECHO").arg, "");
  EXPECT_EQ(parse_line("shard").cmd, command::shard);
  EXPECT_EQ(parse_line("STATS").cmd, command::stats);
  EXPECT_EQ(parse_line("quit").cmd, command::quit);
  EXPECT_EQ(parse_line("").cmd, command::empty);
  EXPECT_EQ(parse_line("\r").cmd, command::empty);
  r = parse_line("FROB x");
  EXPECT_EQ(r.cmd, command::unknown);
  EXPECT_EQ(r.arg, "FROB");
}

TEST(echo_protocol, lines_split_across_reads) {
  line_buffer b(100);
  std::string_view line;
  b.append("PI");
  EXPECT_FALSE(b.next(line));
  b.append("NG\nECHO a\nEC");
  ASSERT_TRUE(b.next(line));
  EXPECT_EQ(line, "PING");
  ASSERT_TRUE(b.next(line));
  EXPECT_EQ(line, "ECHO a");
  EXPECT_FALSE(b.next(line));
  b.append("HO b\n");
  ASSERT_TRUE(b.next(line));
  EXPECT_EQ(line, "ECHO b");
}

TEST(echo_protocol, overlong_lines_are_detected_before_their_end) {
  line_buffer b(8);
  b.append("12345678");
  EXPECT_FALSE(b.overflowed());
  b.append("9");
  EXPECT_TRUE(b.overflowed());
  // A complete line over the limit is refused too, not only a pending one.
  line_buffer whole(8);
  whole.append("PING\n0123456789\nPING\n");
  std::string_view line;
  ASSERT_TRUE(whole.next(line));
  EXPECT_EQ(line, "PING");
  EXPECT_FALSE(whole.next(line));
  EXPECT_TRUE(whole.overflowed());
  line_buffer ok(8);
  ok.append("short\nalso\n");
  EXPECT_FALSE(ok.overflowed());
}

}  // namespace
}  // namespace sluice::echo
