// W5: media. An uploader on one gateway uploads files of a given size, sends each in a message;
// a receiver on another gateway fetches it. Prints median upload and fetch throughput and the
// time from the end of an upload to the receiver holding the whole file.
#pragma once

#include <cstddef>
#include <string>

namespace meshchat::bench {

struct W5Options {
  size_t files = 8;
  size_t bytes = 4u << 20;
};

int RunW5(const std::string& var, const W5Options& o);

}  // namespace meshchat::bench
