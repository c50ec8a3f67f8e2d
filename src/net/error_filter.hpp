#pragma once

// Which I/O errors are the ordinary ways for a connection to end, and so not worth a log line.

#include <boost/beast/core/error.hpp>

namespace parley::net {

/// True for errors that only mean "the connection ended" (closed, aborted, reset, timed out).
bool is_expected_error(const boost::beast::error_code& ec);

} // namespace parley::net
