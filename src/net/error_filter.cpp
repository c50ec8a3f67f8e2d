#include "net/error_filter.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace parley::net {

bool is_expected_error(const boost::beast::error_code& ec) {
  namespace asio = boost::asio;
  return ec == asio::error::operation_aborted || ec == asio::error::eof
         || ec == asio::error::connection_reset || ec == asio::error::broken_pipe
         || ec == asio::error::not_connected || ec == asio::error::bad_descriptor
         || ec == boost::beast::error::timeout
         || ec == boost::beast::http::error::end_of_stream;
}

} // namespace parley::net
