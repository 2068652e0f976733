// The collective watchdog: no rank hangs forever in a collective that another rank never joins.
//
// Every rank counts the operations it has started on each group and records the one it is
// waiting on. A background thread on every rank sends that record to rank 0 once per heartbeat,
// over a private duplicate of MPI_COMM_WORLD. Rank 0's thread checks the records: when a rank has
// waited on operation #S of group G for longer than the timeout, it prints one message naming
// the operation, the group, the ranks that waited and the ranks of G that did not arrive (what
// each of those is doing instead, or that it stopped sending heartbeats), then aborts the job.
// As a fallback, a rank whose own wait exceeds timeout + kLocalGraceSeconds aborts by itself.
//
// Thread-safety: enter/begin_wait/end_wait may be called from any thread; one Watchdog per
// process, constructed and destroyed collectively (every world rank) after MPI_Init with
// MPI_THREAD_MULTIPLE.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace reel::parallel {

struct WatchdogOptions {
  double timeout_s = 600;    // a wait longer than this aborts the job (recipe: parallel.timeout_s)
  double heartbeat_s = 1.0;  // how often each rank reports to rank 0
};

class Watchdog {
 public:
  static constexpr double kLocalGraceSeconds = 20;
  static constexpr uint64_t kPointToPoint = 0;  // the group id a send/recv waits under

  explicit Watchdog(WatchdogOptions options);  // collective over MPI_COMM_WORLD
  ~Watchdog();                                 // collective: stops and joins the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  const WatchdogOptions& options() const { return options_; }

  // A group this rank belongs to; `id` is the same on every member. Called when the group is made.
  void add_group(uint64_t id, const std::string& name);
  // An operation starts on group `id`: returns its sequence number there (1, 2, ...).
  uint64_t enter(uint64_t id);
  // This rank now blocks on operation `seq` of group `id`, described by `what` ("all_reduce of
  // 1024 float"), until end_wait().
  void begin_wait(uint64_t id, uint64_t seq, const std::string& what);
  void end_wait();
  // Called while waiting: aborts the job from this rank when its wait is past timeout + grace.
  void check_local_deadline();

 private:
  struct GroupState {
    std::string name;
    uint64_t entered = 0;
  };
  struct Waiting {
    bool active = false;
    uint64_t group = 0, seq = 0;
    std::string what;
    std::chrono::steady_clock::time_point since;
  };
  // One rank's report, as rank 0 last received it.
  struct Report {
    bool seen = false, final = false;
    std::chrono::steady_clock::time_point received;
    bool waiting = false;
    uint64_t group = 0, seq = 0;
    double waited_s = 0;
    std::string what;
    std::map<uint64_t, std::pair<std::string, uint64_t>> groups;  // id -> (name, entered)
  };

  std::string encode_state(bool final);
  static Report decode_state(const std::vector<char>& bytes);
  void run();                      // the background thread
  void receive_reports(bool block_until_final);
  void inspect();                  // rank 0: abort when some wait is past the timeout
  [[noreturn]] void abort_job(const std::string& message);

  WatchdogOptions options_;
  int rank_ = 0, world_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;  // private duplicate of MPI_COMM_WORLD for the reports
  std::mutex mutex_;
  std::map<uint64_t, GroupState> groups_;
  Waiting waiting_;
  std::vector<Report> reports_;    // rank 0 only, indexed by world rank
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace reel::parallel
