#include "table.h"

#include <gtest/gtest.h>

namespace sluice::cli {
namespace {

TEST(table, columns_are_aligned_and_lines_have_no_trailing_spaces) {
  table t({"NAME", "PARTITIONS", "X"});
  t.add_row({"orders", "3", ""});
  t.add_row({"a", "12345678901", "y"});
  EXPECT_EQ(t.render(),
            "NAME    PARTITIONS   X\n"
            "orders  3\n"
            "a       12345678901  y\n");
  EXPECT_EQ(t.size(), 2u);
}

TEST(table, short_rows_are_padded_and_newlines_in_cells_are_flattened) {
  table t({"A", "B"});
  t.add_row({"x"});
  t.add_row({"two\nlines", "tab\there"});
  EXPECT_EQ(t.render(),
            "A          B\n"
            "x\n"
            "two lines  tab here\n");
}

TEST(table, an_empty_table_is_its_header) { EXPECT_EQ(table({"A", "BB"}).render(), "A  BB\n"); }

TEST(table, fields_and_int_lists) {
  EXPECT_EQ(render_fields({{"NAME", "orders"}, {"PARTITIONS", "3"}}),
            "NAME        orders\n"
            "PARTITIONS  3\n");
  EXPECT_EQ(join_ints({0, 1, 2}), "0,1,2");
  EXPECT_EQ(join_ints({}), "");
}

}  // namespace
}  // namespace sluice::cli
