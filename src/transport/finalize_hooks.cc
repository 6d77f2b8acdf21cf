#include "transport/finalize_hooks.h"

#include <map>
#include <mutex>
#include <utility>

namespace qccl {
namespace {

std::mutex& hooks_mutex() {
  static std::mutex m;
  return m;
}
std::map<int, std::function<void()>>& hooks() {
  static auto* h = new std::map<int, std::function<void()>>;  // outlives static destructors
  return *h;
}
int next_id = 0;

}  // namespace

int add_finalize_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(hooks_mutex());
  hooks()[++next_id] = std::move(hook);
  return next_id;
}

void remove_finalize_hook(int id) {
  std::lock_guard<std::mutex> lock(hooks_mutex());
  hooks().erase(id);
}

void run_finalize_hooks() {
  std::map<int, std::function<void()>> due;
  {
    std::lock_guard<std::mutex> lock(hooks_mutex());
    due.swap(hooks());
  }
  for (auto& [id, hook] : due) hook();  // outside the lock: a hook may remove itself
}

}  // namespace qccl
