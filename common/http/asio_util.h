#pragma once
// Conversions between zmesh's Endpoint and asio's, for the asio event loops.

#include <asio.hpp>

#include "common/base/ip.h"

namespace zm {

inline asio::ip::tcp::endpoint ToAsio(const Endpoint& e) {
  if (e.ip.is_v4()) {
    asio::ip::address_v4::bytes_type b{};
    for (size_t i = 0; i < 4; ++i) b[i] = e.ip.bytes[12 + i];
    return {asio::ip::address_v4(b), e.port};
  }
  asio::ip::address_v6::bytes_type b{};
  for (size_t i = 0; i < 16; ++i) b[i] = e.ip.bytes[i];
  return {asio::ip::address_v6(b), e.port};
}

inline asio::ip::tcp ProtocolOf(const Endpoint& e) {
  return e.ip.is_v4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6();
}

}  // namespace zm
