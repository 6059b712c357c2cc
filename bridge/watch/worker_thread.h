#pragma once

// One background thread for work too long for the watch's event loop (the
// diff of a whole checks table: tens of milliseconds at 10,000 instances,
// about a second at 100,000), so that a health answer arriving meanwhile is
// handled at once. Tasks run one at a time, in the order posted; a task
// hands its result back to the loop itself (EventLoop::Post) and must not
// touch the poster's state from this thread.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace hb {

class WorkerThread {
 public:
  WorkerThread();
  // Drops the tasks not started and waits for the one running.
  ~WorkerThread();

  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Thread-safe. The caller bounds how many tasks wait (the watch posts one
  // table at a time).
  void Post(std::function<void()> task);

 private:
  void Run();

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;                        // GUARDED_BY(mutex_)
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mutex_)
  std::thread thread_;                       // last: starts once the rest exists
};

}  // namespace hb
