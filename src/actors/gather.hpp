#pragma once

// Collects the answers of several requests into one response: the directory asks every room for
// its summary, the presence tracker every session of a user for its info. Each request's handler
// adds to result() and calls one_done(), whether it got an answer or an error (a request with a
// timeout always ends in one of the two), so the response always goes out.

#include <caf/typed_response_promise.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

namespace parley {

template <class Result>
class gather {
public:
  /// Delivers `initial` with what the handlers added, after `finish` (e.g. sorting), once
  /// `expected` requests are done.
  gather(Result initial, std::size_t expected, caf::typed_response_promise<Result> promise,
         std::function<void(Result&)> finish = nullptr)
    : result_(std::move(initial)),
      left_(expected),
      promise_(std::move(promise)),
      finish_(std::move(finish)) {
    // nop
  }

  Result& result() noexcept { return result_; }

  /// One request ended; the last one delivers the result.
  void one_done() {
    if (left_ == 0 || --left_ > 0)
      return;
    if (finish_)
      finish_(result_);
    promise_.deliver(std::move(result_));
  }

private:
  Result result_;
  std::size_t left_;
  caf::typed_response_promise<Result> promise_;
  std::function<void(Result&)> finish_;
};

template <class Result>
using gather_ptr = std::shared_ptr<gather<Result>>;

} // namespace parley
