// Feeding the bytes of a connection to Beast's HTTP request parser, shared
// by the admin_http plugin and its fuzzer (tests/fuzz/admin_http_fuzz.cc).
#pragma once

#include <boost/beast/http.hpp>

#include <string>

namespace sluice::admin_http {

// Feeds what was received and not yet consumed (`in`; the consumed bytes are
// erased) to `parser`. Returns true once the request is complete or `ec`
// says why it cannot be, false when more bytes must be received first.
//
// Beast's contract: after need_more, put() again only with more bytes than
// before. Boost 1.81 adds one more condition: an incomplete final chunk is
// parsed again from its start on the next put(), which asserts (debug
// builds) that at least 5 bytes ("\r\n0\r\n") are there, and an empty
// chunked body ("0\r\n", then "\r\n") has 3 or 4. The final chunk and the
// CRLF after its trailer are at least 5 bytes and are never consumed before
// they are complete, so holding a chunked body's put() until 5 bytes wait
// never stalls a complete request.
template <class Parser>
bool feed_request(Parser& parser, std::string& in, boost::beast::error_code& ec) {
  constexpr size_t final_chunk_min_bytes = 5;
  if (in.empty() || (parser.is_header_done() && parser.chunked() && in.size() < final_chunk_min_bytes)) return false;
  const size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
  in.erase(0, used);
  if (ec == boost::beast::http::error::need_more) ec = {};
  return ec || parser.is_done();
}

}  // namespace sluice::admin_http
