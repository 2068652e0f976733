// Fully sharded data parallel (see fsdp.h).
#include "parallel/fsdp.h"

#include <c10/core/StorageImpl.h>

#include <cmath>

#include "common/error.h"
#include "parallel/data_parallel.h"

namespace reel::parallel {

namespace {

// Gives `t`'s storage exactly `bytes` bytes from its own allocator (0 releases it). Every view of
// the storage (the module's parameters, tensors autograd saved) follows; the old contents are lost.
void set_storage_bytes(const torch::Tensor& t, size_t bytes) {
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  if (s->nbytes() == bytes) return;
  s->set_data_ptr_noswap(s->allocator()->allocate(bytes));
  s->set_nbytes(bytes);
}

size_t full_bytes(const torch::Tensor& t) { return static_cast<size_t>(t.numel()) * t.element_size(); }

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

struct Fsdp::Unit {
  int64_t index = 0;                  // in units_ (and shards_)
  std::string label;                  // the prefix, or "root"
  std::vector<std::string> names;     // parameter names, in flat order
  std::vector<torch::Tensor> params;  // the module's parameters (views of `full`)
  std::vector<int64_t> offsets;
  int64_t numel = 0;        // parameters, without padding
  int64_t shard_numel = 0;  // S: full = group size x S
  torch::Tensor full;       // (N * S), param dtype; storage released when not gathered
  torch::Tensor grad;       // (N * S), param dtype; storage released between backward passes
  bool gathered = false;
  bool grads_live = false;  // grad storage allocated and zeroed for this backward pass
  WorkHandle gather_work, reduce_work;
  torch::Tensor reduce_out;  // (S), reduce dtype
};

Fsdp::Fsdp(torch::nn::Module& module, const std::vector<std::string>& unit_prefixes, Communicator& shard,
           Communicator* replicate, FsdpOptions options)
    : shard_(shard), replicate_(replicate), options_(options) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> labels = unit_prefixes;
  labels.push_back("root");
  for (const auto& label : labels) {
    units_.push_back(std::make_unique<Unit>());
    units_.back()->label = label;
    units_.back()->index = static_cast<int64_t>(units_.size()) - 1;
  }
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;  // frozen parameters stay whole on every rank
    size_t u = unit_prefixes.size();
    for (size_t i = 0; i < unit_prefixes.size(); ++i) {
      if (starts_with(item.key(), unit_prefixes[i])) {
        u = i;
        break;
      }
    }
    Unit& unit = *units_[u];
    unit.names.push_back(item.key());
    unit.params.push_back(item.value());
    unit.offsets.push_back(unit.numel);
    unit.numel += item.value().numel();
  }
  const int n = shard_.size();
  for (auto& up : units_) {
    Unit& u = *up;
    REEL_CHECK(u.numel > 0 || &u == units_.back().get(), "FSDP unit '", u.label,
               "' holds no trainable parameter: the prefix matches nothing in the module");
    u.shard_numel = (u.numel + n - 1) / n;
    // The values every rank starts from: rank 0's (of the shard group, then of the replicas).
    torch::Tensor flat = torch::zeros({u.shard_numel * n}, torch::kFloat32);
    for (size_t k = 0; k < u.params.size(); ++k) {
      flat.narrow(0, u.offsets[k], u.params[k].numel()).copy_(u.params[k].reshape({-1}));
    }
    if (flat.numel() > 0) {
      shard_.broadcast(flat, 0);
      if (replicate_ && replicate_->size() > 1) replicate_->broadcast(flat, 0);
    }
    torch::Tensor master = flat.narrow(0, int64_t(shard_.rank()) * u.shard_numel, u.shard_numel).clone();
    master.set_requires_grad(true);
    shards_.push_back(master);

    u.full = flat.to(options_.param_dtype).clone();
    u.grad = torch::zeros({u.shard_numel * n}, options_.param_dtype);
    for (size_t k = 0; k < u.params.size(); ++k) {
      const int64_t numel = u.params[k].numel();
      const std::vector<int64_t> shape = u.params[k].sizes().vec();
      u.params[k].set_data(u.full.narrow(0, u.offsets[k], numel).view(shape));
      u.params[k].mutable_grad() = u.grad.narrow(0, u.offsets[k], numel).view(shape);
    }
    u.gathered = true;
    set_storage_bytes(u.grad, 0);
  }
  for (int64_t i = 0; i < num_blocks(); ++i) release_params(*units_[i]);
  note_bytes();
}

Fsdp::~Fsdp() = default;

std::vector<std::string> Fsdp::unit_names(int64_t unit) const { return units_.at(unit)->names; }

void Fsdp::note_bytes() { peak_bytes_ = std::max(peak_bytes_, gathered_bytes()); }

int64_t Fsdp::gathered_bytes() const {
  int64_t bytes = 0;
  for (const auto& u : units_) bytes += int64_t(u->full.storage().nbytes() + u->grad.storage().nbytes());
  return bytes;
}

void Fsdp::start_gather(Unit& u) {
  if (u.gathered || u.gather_work) return;
  set_storage_bytes(u.full, full_bytes(u.full));
  torch::Tensor master = shards_[u.index].detach();
  torch::Tensor send = master.scalar_type() == options_.param_dtype ? master : master.to(options_.param_dtype);
  u.gather_work = shard_.all_gather_async(u.full, send);
  note_bytes();
}

void Fsdp::wait_gather(Unit& u) {
  start_gather(u);
  if (u.gather_work) {
    u.gather_work->wait();
    u.gather_work.reset();
  }
  u.gathered = true;
}

void Fsdp::release_params(Unit& u) {
  if (u.gather_work) {  // never release under a running gather
    u.gather_work->wait();
    u.gather_work.reset();
  }
  set_storage_bytes(u.full, 0);
  u.gathered = false;
}

void Fsdp::prepare_grads(Unit& u) {
  if (u.grads_live) return;
  set_storage_bytes(u.grad, full_bytes(u.grad));
  u.grad.zero_();
  u.grads_live = true;
  note_bytes();
}

void Fsdp::start_reduce(Unit& u) {
  if (!u.grads_live || u.reduce_work) return;
  torch::Tensor in = u.grad.scalar_type() == options_.reduce_dtype ? u.grad : u.grad.to(options_.reduce_dtype);
  u.reduce_out = torch::empty({u.shard_numel}, in.options());
  u.reduce_work = shard_.reduce_scatter_async(u.reduce_out, in, ReduceOp::kAvg);
}

torch::Tensor Fsdp::run_unit(int64_t index, const std::function<torch::Tensor()>& run) {
  REEL_CHECK(index >= 0 && index < num_blocks(), "FSDP: block ", index, " out of range [0, ", num_blocks(), ")");
  Unit& u = *units_[index];
  const bool training = torch::GradMode::is_enabled();
  if (training) prepare_grads(*units_.back());  // the root's gradients arrive anywhere in backward
  wait_gather(u);
  if (options_.prefetch && index + 1 < num_blocks()) start_gather(*units_[index + 1]);
  torch::Tensor out = run();
  if (!training || options_.reshard_after_forward) release_params(u);
  if (training && out.requires_grad()) {
    out.register_hook([this, index](const torch::Tensor&) { pre_backward(index); });
  }
  return out;
}

// The gradient of block `index`'s output is complete: its backward is next, and the backward of
// the block after it is over (autograd runs every gradient accumulation into a leaf as soon as it
// is ready, before the nodes that lead further back).
void Fsdp::pre_backward(int64_t index) {
  torch::NoGradGuard no_grad;
  Unit& u = *units_[index];
  wait_gather(u);
  prepare_grads(u);
  if (options_.prefetch && index > 0) start_gather(*units_[index - 1]);
  if (index + 1 < num_blocks()) {
    Unit& done = *units_[index + 1];
    start_reduce(done);
    release_params(done);
  }
  if (index + 2 < num_blocks()) complete_reduce(*units_[index + 2]);  // one block's reduction in flight
}

void Fsdp::complete_reduce(Unit& u) {
  if (u.reduce_work) {
    u.reduce_work->wait();
    u.reduce_work.reset();
    torch::Tensor& g = shards_[u.index].mutable_grad();
    torch::Tensor mean = u.reduce_out.to(torch::kFloat32);
    if (g.defined()) {
      g.add_(mean);
    } else {
      g = mean.clone();
    }
    u.reduce_out = torch::Tensor();
  }
  if (u.grads_live && !u.reduce_work) {
    set_storage_bytes(u.grad, 0);
    u.grads_live = false;
  }
}

void Fsdp::finish_backward() {
  torch::NoGradGuard no_grad;
  for (auto it = units_.rbegin(); it != units_.rend(); ++it) start_reduce(**it);
  for (auto& up : units_) {
    Unit& u = *up;
    complete_reduce(u);
    if (&u != units_.back().get() && u.gathered) release_params(u);
  }
}

void Fsdp::synchronize() {
  if (!replicate_ || replicate_->size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (auto& s : shards_) {
    if (!s.grad().defined()) s.mutable_grad() = torch::zeros_like(s);
    grads.push_back(s.grad());
  }
  torch::Tensor buffer = torch::cat(grads);
  replicate_->all_reduce(buffer, ReduceOp::kAvg);
  int64_t offset = 0;
  for (auto& s : shards_) {
    s.mutable_grad().copy_(buffer.narrow(0, offset, s.numel()));
    offset += s.numel();
  }
}

double Fsdp::clip_grad_norm(double max_norm, const std::vector<torch::Tensor>* weights, Communicator* also_over) {
  torch::Tensor sq = grad_square_sum(shards_, weights);
  shard_.all_reduce(sq, ReduceOp::kSum);  // replicas hold equal shards: one group's sum is the total
  if (also_over) also_over->all_reduce(sq, ReduceOp::kSum);
  return clip_to_norm(shards_, sq, max_norm);
}

void Fsdp::zero_grad() {
  for (auto& s : shards_) {
    if (s.grad().defined()) s.mutable_grad().zero_();
  }
}

void Fsdp::after_optimizer_step() {
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < num_blocks(); ++i) {
    if (units_[i]->gathered) release_params(*units_[i]);
  }
  Unit& root = *units_.back();
  root.gathered = false;
  wait_gather(root);
}

std::vector<std::pair<std::string, torch::Tensor>> Fsdp::full_tensors(
    const std::function<torch::Tensor(int64_t unit)>& shard_of) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& up : units_) {
    Unit& u = *up;
    if (u.numel == 0) continue;
    torch::Tensor local = shard_of(u.index).detach().to(torch::kCPU, torch::kFloat32).contiguous();
    REEL_CHECK(local.numel() == u.shard_numel, "FSDP unit '", u.label, "': a shard of ", u.shard_numel,
               " elements expected, got ", local.numel());
    torch::Tensor full = torch::empty({u.shard_numel * shard_.size()}, torch::kFloat32);
    shard_.all_gather(full, local);
    for (size_t k = 0; k < u.names.size(); ++k) {
      int64_t numel = u.params[k].numel();
      out.emplace_back(u.names[k], full.narrow(0, u.offsets[k], numel).view(u.params[k].sizes()).clone());
    }
  }
  return out;
}

std::vector<Fsdp::ShardSpan> Fsdp::shard_spans(int64_t unit) const {
  const Unit& u = *units_.at(unit);
  const int64_t lo = int64_t(shard_.rank()) * u.shard_numel, hi = lo + u.shard_numel;
  std::vector<ShardSpan> spans;
  for (size_t k = 0; k < u.names.size(); ++k) {
    const int64_t first = u.offsets[k], last = first + u.params[k].numel();
    const int64_t a = std::max(first, lo), b = std::min(last, hi);
    if (a < b) {
      spans.push_back({u.names[k], a - first, b - first, a - lo});
    } else {
      spans.push_back({u.names[k], 0, 0, 0});
    }
  }
  return spans;
}

torch::Tensor Fsdp::shard_from_full(int64_t unit,
                                    const std::function<torch::Tensor(const std::string& name)>& full) const {
  const Unit& u = *units_.at(unit);
  torch::Tensor flat = torch::zeros({u.shard_numel * shard_.size()}, torch::kFloat32);
  for (size_t k = 0; k < u.names.size(); ++k) {
    torch::Tensor t = full(u.names[k]);
    REEL_CHECK(t.sizes() == u.params[k].sizes(), "FSDP: tensor '", u.names[k], "' has shape ", t.sizes(),
               " but the parameter is ", u.params[k].sizes());
    flat.narrow(0, u.offsets[k], t.numel()).copy_(t.reshape({-1}));
  }
  return flat.narrow(0, int64_t(shard_.rank()) * u.shard_numel, u.shard_numel).clone();
}

}  // namespace reel::parallel
