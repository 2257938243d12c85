// Pipelined group commit. With LMDB opened without per-commit fsync (MDB_NOSYNC), a service
// commits each batch at once (cheap: the data is in the page cache) and asks this syncer to
// make everything committed so far durable. The fsync runs on the syncer's own thread while
// the service's loop keeps handling traffic into the next batch; when it completes, the
// service is woken through notify_fd() and releases the acks of every batch the sync covered.
// Throughput is then bounded by batch size per fsync, not by fsyncs per message, and the loop
// never blocks on the disk.
//
// Thread contract: Request() and Durable() are called from the service's thread; the sync
// function runs on the syncer's thread and must be safe to call concurrently with commits
// (mdb_env_sync is).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "base/status.h"

namespace meshchat::store {

class BackgroundSyncer {
 public:
  // At most one sync per `min_interval_us`: under moderate load this trades a little latency
  // for bigger batches (each fsync costs the same CPU however much it writes).
  explicit BackgroundSyncer(std::function<Status()> sync, int64_t min_interval_us = 0);
  ~BackgroundSyncer();
  BackgroundSyncer(const BackgroundSyncer&) = delete;
  BackgroundSyncer& operator=(const BackgroundSyncer&) = delete;

  // Readable (eventfd) whenever a sync has finished; read it with Durable().
  int notify_fd() const { return efd_; }
  // Everything committed up to batch `id` (ids increase) should become durable.
  void Request(uint64_t id);
  // Drains the notification; returns the highest batch id known durable. `err` gets the
  // first sync error since the last call (ok if none).
  uint64_t Durable(Status& err);

 private:
  void Run();
  std::function<Status()> sync_;
  int64_t min_interval_us_;
  int efd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t requested_ = 0;  // guarded by mu_
  uint64_t durable_ = 0;    // guarded by mu_
  Status error_;            // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::thread thread_;
};

}  // namespace meshchat::store
