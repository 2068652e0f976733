// The collective watchdog (see watchdog.h).
#include "parallel/watchdog.h"

#include <mpi.h>

#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "common/runtime.h"
#include "parallel/internal/mpi_check.h"

namespace reel::parallel {
namespace {

constexpr int kReportTag = 1;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

Watchdog::Watchdog(WatchdogOptions options) : options_(options) {
  REEL_CHECK(options_.timeout_s > 0 && options_.heartbeat_s > 0, "watchdog timeout_s ", options_.timeout_s,
             " and heartbeat_s ", options_.heartbeat_s, " must be positive");
  int provided = 0;
  MPI_CHECK(MPI_Query_thread(&provided), "MPI_Query_thread");
  REEL_CHECK(provided == MPI_THREAD_MULTIPLE, "the watchdog needs MPI initialised with MPI_THREAD_MULTIPLE (got level ",
             provided, "); initialise MPI through parallel::MpiRuntime");
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_), "MPI_Comm_size");
  MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup (watchdog)");
  if (rank_ == 0) reports_.resize(world_);
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  stop_ = true;
  thread_.join();
  MPI_Comm_free(&comm_);
}

void Watchdog::add_group(uint64_t id, const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  groups_[id].name = name;
}

uint64_t Watchdog::enter(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return ++groups_[id].entered;
}

void Watchdog::begin_wait(uint64_t id, uint64_t seq, const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  waiting_ = {true, id, seq, what, Clock::now()};
}

void Watchdog::end_wait() {
  std::lock_guard<std::mutex> lock(mutex_);
  waiting_.active = false;
}

void Watchdog::check_local_deadline() {
  std::string message;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!waiting_.active) return;
    double waited = seconds_since(waiting_.since);
    if (waited <= options_.timeout_s + kLocalGraceSeconds) return;
    message = cat("rank ", rank_, " has waited ", int(waited), " s on ", waiting_.what, " (#", waiting_.seq,
                  " on group '", groups_[waiting_.group].name, "'), past parallel.timeout_s = ", options_.timeout_s,
                  " s, and rank 0's watchdog did not stop the job; is rank 0 alive?");
  }
  abort_job(message);
}

// Line format: final, then "waiting group seq waited_s" (or "idle"), the description, the group
// count, then one "id entered name" line per group.
std::string Watchdog::encode_state(bool final) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream os;
  os << (final ? 1 : 0) << '\n';
  if (waiting_.active) {
    os << "waiting " << waiting_.group << ' ' << waiting_.seq << ' ' << seconds_since(waiting_.since) << '\n'
       << waiting_.what << '\n';
  } else {
    os << "idle\n\n";
  }
  os << groups_.size() << '\n';
  for (const auto& [id, g] : groups_) os << id << ' ' << g.entered << ' ' << g.name << '\n';
  return os.str();
}

Watchdog::Report Watchdog::decode_state(const std::vector<char>& bytes) {
  std::istringstream is(std::string(bytes.begin(), bytes.end()));
  Report r;
  r.seen = true;
  r.received = Clock::now();
  int final = 0;
  std::string state, line;
  is >> final >> state;
  r.final = final != 0;
  if (state == "waiting") {
    r.waiting = true;
    is >> r.group >> r.seq >> r.waited_s;
  }
  std::getline(is, line);
  std::getline(is, r.what);
  size_t n = 0;
  is >> n;
  for (size_t i = 0; i < n; ++i) {
    uint64_t id = 0, entered = 0;
    std::string name;
    is >> id >> entered >> name;
    r.groups[id] = {name, entered};
  }
  return r;
}

void Watchdog::receive_reports(bool block_until_final) {
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (true) {
    int flag = 0;
    MPI_Status status;
    MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kReportTag, comm_, &flag, &status), "MPI_Iprobe (watchdog)");
    if (flag) {
      int count = 0;
      MPI_Get_count(&status, MPI_CHAR, &count);
      std::vector<char> bytes(count);
      MPI_CHECK(MPI_Recv(bytes.data(), count, MPI_CHAR, status.MPI_SOURCE, kReportTag, comm_,
                         MPI_STATUS_IGNORE),
                "MPI_Recv (watchdog)");
      reports_[status.MPI_SOURCE] = decode_state(bytes);
      continue;
    }
    if (!block_until_final) return;
    bool all_final = true;
    for (int r = 1; r < world_; ++r) all_final = all_final && reports_[r].final;
    if (all_final || Clock::now() > deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Watchdog::run() {
  auto next = Clock::now();
  while (!stop_) {
    if (Clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    next = Clock::now() + std::chrono::microseconds(int64_t(options_.heartbeat_s * 1e6));
    if (rank_ == 0) {
      receive_reports(false);
      std::string own = encode_state(false);
      reports_[0] = decode_state(std::vector<char>(own.begin(), own.end()));
      inspect();
    } else {
      std::string s = encode_state(false);
      MPI_CHECK(MPI_Send(s.data(), int(s.size()), MPI_CHAR, 0, kReportTag, comm_), "MPI_Send (watchdog)");
    }
  }
  if (rank_ == 0) {
    receive_reports(true);
  } else {
    std::string s = encode_state(true);
    MPI_CHECK(MPI_Send(s.data(), int(s.size()), MPI_CHAR, 0, kReportTag, comm_), "MPI_Send (watchdog)");
  }
}

void Watchdog::inspect() {
  const double stale_s = 3 * options_.heartbeat_s + 5;
  for (int w = 0; w < world_; ++w) {
    const Report& r = reports_[w];
    if (!r.seen || !r.waiting) continue;
    const double waited = r.waited_s + seconds_since(r.received);
    if (waited <= options_.timeout_s) continue;
    if (r.group == kPointToPoint) {
      abort_job(cat("rank ", w, ": ", r.what, " did not complete within parallel.timeout_s = ", options_.timeout_s,
                    " s; the peer did not post the matching transfer"));
    }
    auto name_it = r.groups.find(r.group);
    const std::string group = name_it == r.groups.end() ? "?" : name_it->second.first;
    std::vector<int> waiters, members;
    std::ostringstream missing;
    int missing_count = 0;
    for (int m = 0; m < world_; ++m) {
      const Report& q = reports_[m];
      auto g = q.groups.find(r.group);
      if (!q.seen || g == q.groups.end()) continue;
      members.push_back(m);
      const double age = seconds_since(q.received);
      if (q.waiting && q.group == r.group && q.seq == r.seq) {
        waiters.push_back(m);
      } else if (g->second.second < r.seq || age > stale_s) {
        ++missing_count;
        missing << "\n  rank " << m << ": ";
        if (age > stale_s) {
          missing << "no heartbeat for " << int(age) << " s (process stopped or its node lost)";
        } else if (q.waiting) {
          auto other = q.groups.find(q.group);
          missing << "waits instead on " << q.what << " (#" << q.seq << " on group '"
                  << (other == q.groups.end() ? "?" : other->second.first) << "') for " << int(q.waited_s) << " s";
        } else {
          missing << "busy outside any collective (has started " << g->second.second << " operations on this group)";
        }
      }
    }
    std::ostringstream msg;
    msg << r.what << " (#" << r.seq << " on group '" << group << "', " << members.size()
        << " ranks) did not complete within parallel.timeout_s = " << options_.timeout_s << " s.\n  waiting: ranks";
    for (int m : waiters) msg << ' ' << m;
    if (missing_count > 0) {
      msg << "\n  did not arrive (" << missing_count << "):" << missing.str();
    } else {
      msg << "\n  every rank of the group arrived; the transport did not complete the operation";
    }
    abort_job(msg.str());
  }
}

void Watchdog::abort_job(const std::string& message) {
  std::fprintf(stderr, "[reel] watchdog on rank %d (%s): %s\n[reel] aborting the job\n", rank_, host_name().c_str(),
               message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();
}

}  // namespace reel::parallel
