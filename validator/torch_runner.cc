// RunEvaluation: the one file that includes LibTorch (LIBRARIES.md: a TU costs
// ~7 s and ~750 MB to compile). Everything LibTorch throws is caught here and
// becomes outcome.ok = false with the reason; nothing it throws leaves.
#include <ATen/Parallel.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>

#include "core/fs.h"
#include "validator/evaluation.h"
#include "validator/metrics.h"

namespace sigil::validator {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// LibTorch's messages for TorchScript errors carry the script's traceback;
// keep the start (what failed) and the end (the exception itself) of a long one.
std::string Bounded(std::string message) {
  constexpr size_t kHead = 1000, kTail = 3000;
  if (message.size() <= kHead + kTail) return message;
  return message.substr(0, kHead) + "\n[...]\n" + message.substr(message.size() - kTail);
}

torch::ScalarType TorchType(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return torch::kFloat64;
    case DType::kF32:
      return torch::kFloat32;
    case DType::kF16:
      return torch::kFloat16;
    case DType::kBF16:
      return torch::kBFloat16;
    case DType::kI64:
      return torch::kInt64;
    case DType::kI32:
      return torch::kInt32;
    case DType::kI16:
      return torch::kInt16;
    case DType::kI8:
      return torch::kInt8;
    case DType::kU8:
      return torch::kUInt8;
    case DType::kBool:
      return torch::kBool;
  }
  return torch::kFloat32;
}

// Reads a tensor stored at its offset of a file, straight into a tensor of
// its shape and type (one allocation, no staging copy).
core::Result<torch::Tensor> ReadTensor(const FileTensor& ft, const std::string& what) {
  const TensorRef& ref = ft.tensor;
  if (ref.shape.empty() || ref.shape[0] == 0) {
    return core::InvalidArgument(what + " must have shape [N, ...] with N > 0");
  }
  std::vector<int64_t> sizes;
  uint64_t count = 1;
  for (uint64_t d : ref.shape) {
    if (d > (1ull << 40) || (d != 0 && count > (1ull << 62) / d)) {
      return core::InvalidArgument(what + " shape is too large");
    }
    count *= d;
    sizes.push_back(static_cast<int64_t>(d));
  }
  torch::ScalarType type = TorchType(ref.dtype);
  uint64_t bytes = count * c10::elementSize(type);

  core::UniqueFd fd(::open(ft.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return core::ErrnoStatus(errno, "opening " + what + " file " + ft.path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return core::ErrnoStatus(errno, "reading " + what + " file");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (ref.offset > size || bytes > size - ref.offset) {
    return core::InvalidArgument(what + " (" + std::to_string(bytes) + " bytes at offset " +
                                 std::to_string(ref.offset) + ") extends past the end of " + ft.path + " (" +
                                 std::to_string(size) + " bytes)");
  }
  torch::Tensor t = torch::empty(sizes, torch::TensorOptions().dtype(type));
  char* out = static_cast<char*>(t.data_ptr());
  uint64_t done = 0;
  while (done < bytes) {
    auto n = core::PreadSome(fd.get(), out + done, bytes - done, ref.offset + done);
    if (!n.ok()) return n.status().Annotate("reading " + what);
    if (*n == 0) return core::DataLoss(what + ": file shrank while being read");
    done += *n;
  }
  return t;
}

core::Result<Targets> ToTargets(const torch::Tensor& t) {
  Targets targets;
  targets.shape = t.sizes().vec();
  if (t.is_floating_point()) {
    torch::Tensor d = t.to(torch::kFloat64).contiguous();
    targets.values.assign(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  } else {
    targets.integer = true;
    torch::Tensor l = t.to(torch::kInt64).contiguous();
    targets.classes.assign(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
  }
  return targets;
}

// One full pass over the inputs: outputs collected as float on the CPU,
// the wall time of each batch (forward and copy back) appended to latencies.
core::Result<Outputs> RunPass(torch::jit::Module& module, const torch::Tensor& inputs, uint32_t batch_size,
                              const torch::Device& device, std::vector<double>* latencies) {
  Outputs outputs;
  int64_t n = inputs.size(0);
  for (int64_t start = 0; start < n; start += batch_size) {
    int64_t len = std::min<int64_t>(batch_size, n - start);
    torch::Tensor batch = inputs.narrow(0, start, len).to(device);
    auto t0 = Clock::now();
    torch::jit::IValue result = module.forward({batch});
    if (!result.isTensor()) {
      return core::InvalidArgument("the model's forward returned " + result.tagKind() + ", not a tensor");
    }
    torch::Tensor out = result.toTensor().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    if (latencies) latencies->push_back(SecondsSince(t0) * 1000.0);
    if (out.dim() == 0 || out.size(0) != len) {
      return core::InvalidArgument(
          "the model returned " +
          std::string(out.dim() == 0 ? "a scalar" : "shape " + c10::str(out.sizes())) + " for a batch of " +
          std::to_string(len) + " samples");
    }
    std::vector<int64_t> sample_shape(out.sizes().begin() + 1, out.sizes().end());
    if (outputs.shape.empty()) {
      outputs.shape.push_back(0);
      outputs.shape.insert(outputs.shape.end(), sample_shape.begin(), sample_shape.end());
    } else if (!std::equal(sample_shape.begin(), sample_shape.end(), outputs.shape.begin() + 1,
                           outputs.shape.end())) {
      return core::InvalidArgument("the model's output shape per sample changed between batches");
    }
    outputs.shape[0] += len;
    const float* data = out.data_ptr<float>();
    outputs.values.insert(outputs.values.end(), data, data + out.numel());
  }
  return outputs;
}

bool SameBits(const Outputs& a, const Outputs& b) {
  return a.shape == b.shape && a.values.size() == b.values.size() &&
         std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0;
}

core::Status Evaluate(const EvalJob& job, EvalOutcome* outcome) {
  if (job.batch_size == 0) return core::InvalidArgument("batch_size must be at least 1");
  if (job.threads > 0) at::set_num_threads(job.threads);
  outcome->threads = at::get_num_threads();

  bool cuda = false;
  if (job.device == "cuda") {
    if (!torch::cuda::is_available()) {
      return core::FailedPrecondition("device \"cuda\" asked for, but LibTorch sees no CUDA device");
    }
    cuda = true;
  } else if (job.device == "auto") {
    cuda = torch::cuda::is_available();
  } else if (job.device != "cpu") {
    return core::InvalidArgument("unknown device \"" + job.device + "\"");
  }
  torch::Device device = cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  outcome->device = cuda ? "cuda:0" : "cpu";

  ASSIGN_OR_RETURN(torch::Tensor inputs, ReadTensor(job.inputs, "inputs"));
  ASSIGN_OR_RETURN(torch::Tensor target_tensor, ReadTensor(job.targets, "targets"));
  if (inputs.size(0) != target_tensor.size(0)) {
    return core::InvalidArgument("inputs have " + std::to_string(inputs.size(0)) + " samples, targets " +
                                 std::to_string(target_tensor.size(0)));
  }
  ASSIGN_OR_RETURN(Targets targets, ToTargets(target_tensor));
  target_tensor = torch::Tensor();

  auto load_start = Clock::now();
  torch::jit::Module module;
  try {
    module = torch::jit::load(job.model_path, torch::kCPU);
  } catch (const c10::Error& e) {
    return core::InvalidArgument("loading the model: " + Bounded(e.what_without_backtrace()));
  }
  module.eval();
  if (cuda) module.to(device);
  outcome->load_seconds = SecondsSince(load_start);

  // TorchScript's profiling executor profiles the first call and optimises
  // on the second; those two calls are not what serving costs, so a batch
  // runs twice untimed before the timed pass.
  torch::Tensor warmup = inputs.narrow(0, 0, std::min<int64_t>(job.batch_size, inputs.size(0))).to(device);
  for (int i = 0; i < 2; ++i) module.forward({warmup});
  warmup = torch::Tensor();

  std::vector<double> latencies;
  auto run_start = Clock::now();
  ASSIGN_OR_RETURN(Outputs outputs, RunPass(module, inputs, job.batch_size, device, &latencies));
  double run_seconds = SecondsSince(run_start);
  outcome->samples = static_cast<uint64_t>(inputs.size(0));
  outcome->batches = latencies.size();

  ASSIGN_OR_RETURN(outcome->metrics["latency_p50_ms"], Percentile(latencies, 50));
  ASSIGN_OR_RETURN(outcome->metrics["latency_p95_ms"], Percentile(latencies, 95));
  outcome->metrics["throughput"] = run_seconds > 0 ? static_cast<double>(outcome->samples) / run_seconds : 0;

  auto quality = ComputeMetrics(job.metrics, outputs, targets, job.top_k);
  if (!quality.ok()) return quality.status().Annotate("metrics");
  outcome->metrics.insert(quality->begin(), quality->end());

  if (job.determinism) {
    // Bit-for-bit repeatability is a CPU property: GPU kernels may reduce in
    // any order. After a CUDA run the model is moved and run twice on CPU.
    const torch::Device cpu(torch::kCPU);
    Outputs first;
    if (cuda) {
      module.to(cpu);
      ASSIGN_OR_RETURN(first, RunPass(module, inputs, job.batch_size, cpu, nullptr));
    }
    ASSIGN_OR_RETURN(Outputs second, RunPass(module, inputs, job.batch_size, cpu, nullptr));
    outcome->deterministic = SameBits(cuda ? first : outputs, second);
  }
  return core::OkStatus();
}

}  // namespace

EvalOutcome RunEvaluation(const EvalJob& job) {
  auto start = Clock::now();
  EvalOutcome outcome;
  outcome.torch_version = TorchVersion();
  core::Status status;
  try {
    torch::NoGradGuard no_grad;
    status = Evaluate(job, &outcome);
  } catch (const c10::Error& e) {
    status = core::Aborted("the model failed: " + Bounded(e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    status = core::ResourceExhausted("the model failed: out of memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    status = core::Aborted("the model failed: " + Bounded(e.what()));
  }
  outcome.ok = status.ok();
  if (!status.ok()) outcome.error = status.message();
  outcome.seconds = SecondsSince(start);
  return outcome;
}

std::string TorchVersion() { return TORCH_VERSION; }

bool TorchCudaAvailable() {
  try {
    return torch::cuda::is_available();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace sigil::validator
