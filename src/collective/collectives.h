// Entry point of the collective layer, called by api/ and engine/ after
// argument checks. One path for host and device buffers
// (docs/architecture.md "One collective path"): the call's placement picks
// the codec (host or device), its workspace and, for device buffers over a
// transport that moves only host memory, a staging wrapper; the call
// agreement and the algorithms are the same code for both.
#pragma once

#include <memory>
#include <vector>

#include "codec/device_backend.h"
#include "collective/algorithm.h"
#include "collective/call_agreement.h"
#include "collective/staging_transport.h"

namespace qccl {

// Where a call's buffers live and the stream a device call is ordered on.
struct Placement {
  bool device = false;
  void* stream = nullptr;  // a cudaStream_t (or a test backend's stream)
};

class Collectives {
 public:
  Collectives(const Config& config, Transport& transport, Adapter& adapter);
  ~Collectives();

  // Agrees on the call with the other ranks, then runs the first enabled
  // algorithm. count == 0 is a no-op (no communication). Host buffers have
  // their result when it returns; device buffers are stream-ordered: the
  // result is there for later work on `where.stream`. A failure the device
  // reports late (a corrupt payload, checked on the device) is returned by
  // the next device call.
  Result run(const CollectiveRequest& req, const Placement& where = Placement{});

  // The call agreement for an operation that is not a collective over user
  // data (kEngineStartCall): every rank must make the same one next.
  Result agree_on_operation(uint8_t kind);
  // A call whose arguments failed this rank's checks (`local_error`, whose
  // message is the thread's last error) still takes part in the agreement,
  // so every rank fails it and the ranks' next calls pair correctly.
  // Returns local_error with its message.
  Result take_part_rejected(Result local_error);

  // The device this communicator's device calls run on (NCCL: the
  // communicator's). Otherwise the device of the first device buffer.
  void bind_device(int device) { device_ = device; }

  // Control messages (the engine's negotiation): every rank's host byte
  // string, rank r's at (*all)[(*offsets)[r] .. (*offsets)[r+1]). Outside
  // the call agreement and the counters; bounded by the transport's timeout.
  Result gather_control(const void* mine, uint64_t bytes, std::vector<unsigned char>* all,
                        std::vector<uint64_t>* offsets);

  int rank() const { return ctx_.base_transport.rank(); }
  int size() const { return ctx_.base_transport.size(); }

  void mark_step();
  void set_learning_rate(double lr) { ctx_.learning_rate = lr; }
  const CollectiveContext& context() const { return ctx_; }
  // The device-memory workspace (null before the first device call); tests.
  const Workspace* device_workspace() const { return device_workspace_.get(); }

 private:
  // Points ctx_ at the codec, workspace and transport for `where`.
  Result place(const Placement& where, const CollectiveRequest& req);
  Result agree_and_run(const CollectiveRequest& req);

  CollectiveContext ctx_;
  std::vector<std::unique_ptr<CollectiveAlgorithm>> algorithms_;
  Workspace host_workspace_;
  int device_ = -1;
  std::unique_ptr<Codec> device_codec_;
  std::unique_ptr<Workspace> device_workspace_;
  std::unique_ptr<StagingTransport> staging_;
};

}  // namespace qccl
