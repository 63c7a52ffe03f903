#include "util/big_buffer.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace fern {
namespace {

// The AnonHugePages (kB) of the mapping that holds `p`, from /proc/self/smaps; -1 if unknown.
long HugePagesKbAt(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto address = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long begin = 0;
    unsigned long end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 && line.find(':') > 20) {
      inside = begin <= address && address < end;
      continue;
    }
    long kb = 0;
    if (inside && std::sscanf(line.c_str(), "AnonHugePages: %ld kB", &kb) == 1) return kb;
  }
  return -1;
}

bool HugePagesOnRequest() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::stringstream text;
  text << in.rdbuf();
  return text.str().find("[always]") != std::string::npos ||
         text.str().find("[madvise]") != std::string::npos;
}

TEST(BigBufferTest, ReserveKeepsContentsAndMakesRoom) {
  std::string small = "abc";
  ReserveBuffer(&small, 100);
  EXPECT_EQ(small, "abc");
  EXPECT_GE(small.capacity(), 100u);

  std::string big(1000, 'x');
  ReserveBuffer(&big, size_t{16} << 20);
  EXPECT_EQ(big, std::string(1000, 'x'));
  EXPECT_GE(big.capacity(), size_t{16} << 20);
  const size_t capacity = big.capacity();
  ReserveBuffer(&big, 10);  // enough room already: nothing moves
  EXPECT_EQ(big.capacity(), capacity);
  big.resize(size_t{16} << 20, 'y');
  EXPECT_EQ(big.substr(0, 1000), std::string(1000, 'x'));
  EXPECT_EQ(big.back(), 'y');
}

TEST(BigBufferTest, AdviceIsHarmlessOnAnyRange) {
  std::string buffer(size_t{8} << 20, 'a');
  AdviseHugePages(buffer.data(), 1);                    // too small: nothing
  AdviseHugePages(buffer.data() + 1, size_t{3} << 20);  // no whole aligned 2 MiB: nothing
  AdviseHugePages(buffer.data(), buffer.size());        // touched pages keep their contents
  EXPECT_EQ(buffer, std::string(size_t{8} << 20, 'a'));
}

TEST(BigBufferTest, BigRoomComesInHugePagesWhereTheKernelOffersThem) {
  if (!HugePagesOnRequest()) GTEST_SKIP() << "transparent huge pages are off on this machine";
  std::string buffer;
  ReserveBuffer(&buffer, size_t{32} << 20);
  buffer.resize(size_t{32} << 20, 'z');
  const long kb = HugePagesKbAt(buffer.data() + (size_t{16} << 20));
  if (kb < 0) GTEST_SKIP() << "/proc/self/smaps does not say";
  // The kernel may lack free huge pages at the moment; with 32 MiB asked for, it has had
  // at least one in every run on the machines Fern is tested on.
  EXPECT_GT(kb, 0);
}

}  // namespace
}  // namespace fern
