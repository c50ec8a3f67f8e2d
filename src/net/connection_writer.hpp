#pragma once

// The single writer of one connection: it owns the connection's outbound path from the queue to the
// socket — batching, buffers, the write deadline, the close handshake and the socket's shutdown —
// and the connection's lifecycle as one explicit phase.
//
// How a flush writes (the hot path of every fan-out):
// - it takes everything the sink holds and copies small frames back to back into the loop's write
//   buffer (large payloads are referenced, not copied), so one system call carries the whole batch;
// - on a raw socket it writes at once without waiting: on a healthy connection everything leaves
//   in that call and the connection keeps no buffer of its own;
// - only what the socket cannot take now is copied into the connection's backlog and written
//   asynchronously; frames pushed meanwhile wait in the sink and leave together in the next write.
// Streams that cannot write without waiting (TLS) take the asynchronous path for every batch.
//
// Delivery latency (parley_delivery_latency_seconds): when a batch is completely on the wire (at
// once, or when its asynchronous write completes), every chat message in it that carries an accept
// stamp is observed once, against one clock reading per batch. One observation per frame per
// recipient, no allocation on the direct path (the stamps are read from the shared frames); only a
// write that has to wait keeps the batch's stamps, next to the bytes it keeps anyway. Observations
// go into the loop thread's histogram_batch (no atomics per recipient), which the loop's sweep
// flushes into the shared histogram.
//
// Everything here runs on the connection's loop thread.

#include "metrics/server_metrics.hpp"
#include "net/connection_sink.hpp"
#include "net/error_filter.hpp"
#include "net/frame_header.hpp"
#include "net/io_loop.hpp"
#include "net/streams.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/core/span.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace parley::net {

/// Where a connection is in its life. It only ever moves down this list.
enum class connection_phase : uint8_t {
  open,         ///< frames flow both ways
  closing,      ///< our close frame is written: no more data; waiting for the peer's close
  draining,     ///< the close handshake is over (or failed): writing what is queued, then shutdown
  half_closed,  ///< our side is shut down: waiting for the peer to close its side
  closed,       ///< the socket is closed; nothing more happens
};

/// See the file comment.
template <class Stream>
class connection_writer {
public:
  using clock_type = std::chrono::steady_clock;

  /// Frames up to this size are copied into the write buffer; larger ones are written in place.
  static constexpr std::size_t copy_limit = 4096;

  /// Batches one flush writes before it lets the loop's other connections have their turn.
  static constexpr int batches_per_turn = 8;

  connection_writer(Stream& stream, connection_sink& sink, io_loop& loop)
    : stream_(stream), sink_(sink), loop_(loop) {
    // nop
  }

  connection_phase phase() const noexcept { return phase_; }

  /// Writes everything the sink holds unless a write is already waiting for the socket. `owner`
  /// keeps the connection alive while one waits.
  void flush(const std::shared_ptr<void>& owner) {
    if (phase_ == connection_phase::closed || waiting_)
      return;
    auto& scratch = loop_.write_scratch();
    for (int turn = 0; turn < batches_per_turn; ++turn) {
      scratch.batch.clear();
      if (!sink_.take(scratch.batch)) {
        on_idle();
        return;
      }
      note_close_frames(scratch.batch);
      if (!write_batch(scratch, owner))
        return;  // waiting for the socket, or closed
    }
    // Still more: continue after the other connections of this loop had their turn.
    boost::asio::post(loop_.context(), [this, owner] { flush(owner); });
  }

  /// The peer sent its close frame: answer it (unless our own close is already on its way), write
  /// what is queued, then shut down.
  void peer_closed(uint16_t code, const std::shared_ptr<void>& owner) {
    if (phase_ >= connection_phase::draining)
      return;
    // 1005 means the peer gave no code: answer with none either.
    auto payload = code == 1005 ? frame{} : make_close_payload(code, {});
    note_close_code(code);
    sink_.push_control(opcode::close, std::move(payload));
    phase_ = connection_phase::draining;
    flush(owner);
  }

  /// The peer broke the protocol: send a close frame with this code, then shut down without
  /// waiting for an answer.
  void fail(uint16_t code, std::string_view why, const std::shared_ptr<void>& owner) {
    if (phase_ >= connection_phase::draining)
      return;
    note_close_code(code);
    sink_.push_control(opcode::close, make_close_payload(code, why));
    phase_ = connection_phase::draining;
    flush(owner);
  }

  /// Ends the connection now: the socket closes and whatever is queued is dropped.
  void abort() {
    if (phase_ == connection_phase::closed)
      return;
    phase_ = connection_phase::closed;
    sink_.finish();
    close_stream(stream_);
    std::string{}.swap(backlog_);
  }

  /// The loop's periodic check: a write that waits too long, or a close handshake that is not
  /// answered in time, ends the connection. Never ends it synchronously beyond closing the socket.
  void check_deadlines(clock_type::time_point now) {
    auto limit = loop_.deadlines().write_timeout;
    if (waiting_ && now - waiting_since_ > limit) {
      spdlog::info("connection failed to write: timed out");
      abort();
    } else if ((phase_ == connection_phase::closing || phase_ == connection_phase::half_closed) &&
               now - phase_since_ > limit) {
      abort();
    }
  }

  /// Bytes copied for a write that waits for the socket (the connection's only buffer).
  std::size_t backlog_bytes() const noexcept { return backlog_.size(); }

  /// Batches taken from the sink and written so far: every frame queued before a flush leaves in
  /// the same batch.
  uint64_t batches() const noexcept { return batches_; }

  /// Write system calls made so far (an asynchronous write counts once).
  uint64_t write_calls() const noexcept { return write_calls_; }

  /// The code of the connection's close handshake: the first close frame sent or received
  /// (1005 when it had no code); 1006 (RFC 6455: closed abnormally) while there was none.
  uint16_t close_code() const noexcept { return close_code_ != 0 ? close_code_ : 1006; }

private:
  static constexpr bool writes_without_waiting =
    std::is_same_v<Stream, boost::asio::ip::tcp::socket>;

  /// Keeps the first close code seen in either direction: whoever started the close handshake.
  void note_close_code(uint16_t code) noexcept {
    if (close_code_ == 0)
      close_code_ = code;
  }

  /// A close frame leaving means no more data; and once both sides closed, shut down after it.
  void note_close_frames(const std::vector<outbound_item>& batch) {
    if (phase_ != connection_phase::open)
      return;
    for (const auto& item : batch)
      if (item.header.bytes[0] == (0x80 | static_cast<uint8_t>(opcode::close))) {
        const auto* body = item.payload ? item.payload->data() : nullptr;
        note_close_code(item.payload && item.payload->size() >= 2
                          ? static_cast<uint16_t>((static_cast<uint8_t>(body[0]) << 8) |
                                                  static_cast<uint8_t>(body[1]))
                          : 1005);
        phase_ = connection_phase::closing;
        phase_since_ = clock_type::now();
        return;
      }
  }

  /// Nothing left to write: a drained connection shuts down its side now.
  void on_idle() {
    if (phase_ != connection_phase::draining)
      return;
    shutdown_send(stream_);
    phase_ = connection_phase::half_closed;
    phase_since_ = clock_type::now();
  }

  /// Writes one batch. True when it all left at once and the caller may take the next one.
  bool write_batch(io_loop::write_scratch_type& scratch, const std::shared_ptr<void>& owner) {
    ++batches_;
    if constexpr (writes_without_waiting) {
      assemble(scratch);
      std::size_t index = 0;
      if (!write_now(scratch.gather, index))
        return false;
      if (index == scratch.gather.size()) {
        sink_.release_batch();
        observe_delivered(scratch.batch);
        return true;
      }
      // The socket is full: keep only the unwritten bytes, and wait for it.
      backlog_.clear();
      for (auto i = index; i < scratch.gather.size(); ++i)
        backlog_.append(static_cast<const char*>(scratch.gather[i].data()), scratch.gather[i].size());
      keep_stamps(scratch.batch);
    } else {
      backlog_.clear();
      for (const auto& item : scratch.batch) {
        backlog_.append(reinterpret_cast<const char*>(item.header.bytes.data()), item.header.size);
        if (item.payload)
          backlog_.append(*item.payload);
      }
      keep_stamps(scratch.batch);
    }
    scratch.batch.clear();
    write_later(owner);
    return false;
  }

  /// Lays the batch out as few buffers as possible: small frames back to back in the loop's write
  /// buffer, large payloads in place.
  void assemble(io_loop::write_scratch_type& scratch) {
    auto& bytes = scratch.bytes;
    auto& gather = scratch.gather;
    std::size_t copied = 0;
    for (const auto& item : scratch.batch) {
      copied += item.header.size;
      if (item.payload && item.payload->size() <= copy_limit)
        copied += item.payload->size();
    }
    // Reserved up front, so that pointers into it stay valid while it fills.
    bytes.clear();
    bytes.reserve(copied);
    gather.clear();
    std::size_t run_start = 0;
    for (const auto& item : scratch.batch) {
      bytes.append(reinterpret_cast<const char*>(item.header.bytes.data()), item.header.size);
      if (!item.payload)
        continue;
      if (item.payload->size() <= copy_limit) {
        bytes.append(*item.payload);
        continue;
      }
      if (bytes.size() > run_start)
        gather.emplace_back(bytes.data() + run_start, bytes.size() - run_start);
      gather.emplace_back(item.payload->data(), item.payload->size());
      run_start = bytes.size();
    }
    if (bytes.size() > run_start)
      gather.emplace_back(bytes.data() + run_start, bytes.size() - run_start);
  }

  /// Writes as much of `gather` as the socket takes now. On return, gather[index] is the first
  /// buffer not completely written (trimmed to what is left of it). False if the socket failed.
  bool write_now(std::vector<boost::asio::const_buffer>& gather, std::size_t& index) {
    while (index < gather.size()) {
      boost::system::error_code ec;
      boost::span<const boost::asio::const_buffer> rest{gather.data() + index, gather.size() - index};
      ++write_calls_;
      auto n = stream_.write_some(rest, ec);
      if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again)
        return true;
      if (ec) {
        if (!is_expected_error(ec))
          spdlog::debug("connection failed to write: {}", ec.message());
        abort();
        return false;
      }
      while (index < gather.size() && n >= gather[index].size()) {
        n -= gather[index].size();
        ++index;
      }
      if (index < gather.size())
        gather[index] += n;
    }
    return true;
  }

  /// Writes the backlog asynchronously; the next batch waits until it is out.
  void write_later(const std::shared_ptr<void>& owner) {
    waiting_ = true;
    waiting_since_ = clock_type::now();
    ++write_calls_;
    boost::asio::async_write(stream_, boost::asio::buffer(backlog_),
                             [this, owner](boost::system::error_code ec, std::size_t) {
                               waiting_ = false;
                               if (phase_ == connection_phase::closed)
                                 return;
                               if (ec) {
                                 if (!is_expected_error(ec))
                                   spdlog::debug("connection failed to write: {}", ec.message());
                                 abort();
                                 return;
                               }
                               // Given back at once: most connections are idle most of the time.
                               std::string{}.swap(backlog_);
                               observe_kept_stamps();
                               sink_.release_batch();
                               flush(owner);
                             });
  }

  /// Observes the delivery latency of every stamped chat message in a batch that is on the wire.
  static void observe_delivered(const std::vector<outbound_item>& batch) {
    std::optional<encoded_frame::clock::time_point> now;  // read once, and only if needed
    for (const auto& item : batch) {
      if (!item.payload || item.payload->accepted == encoded_frame::clock::time_point{})
        continue;
      if (!now)
        now = encoded_frame::clock::now();
      observe_latency(*now - item.payload->accepted);
    }
  }

  static void observe_latency(encoded_frame::clock::duration latency) {
    metrics::delivery_latency_batch().observe(std::chrono::duration<double>(latency).count());
  }

  /// A batch that must wait for the socket keeps its stamps until the write completes.
  void keep_stamps(const std::vector<outbound_item>& batch) {
    stamps_.reset();
    for (const auto& item : batch) {
      if (!item.payload || item.payload->accepted == encoded_frame::clock::time_point{})
        continue;
      if (!stamps_)
        stamps_ = std::make_unique<std::vector<encoded_frame::clock::time_point>>();
      stamps_->push_back(item.payload->accepted);
    }
  }

  void observe_kept_stamps() {
    if (!stamps_)
      return;
    auto now = encoded_frame::clock::now();
    for (auto stamp : *stamps_)
      observe_latency(now - stamp);
    stamps_.reset();
  }

  Stream& stream_;
  connection_sink& sink_;
  io_loop& loop_;
  std::string backlog_;
  /// The stamps of the batch in backlog_, if it has any: a pointer, because most connections never
  /// wait for their socket and idle memory per connection counts.
  std::unique_ptr<std::vector<encoded_frame::clock::time_point>> stamps_;
  clock_type::time_point waiting_since_{};
  clock_type::time_point phase_since_{};
  uint64_t batches_ = 0;
  uint64_t write_calls_ = 0;
  connection_phase phase_ = connection_phase::open;
  uint16_t close_code_ = 0;  ///< 0: no close frame yet
  bool waiting_ = false;
};

} // namespace parley::net
