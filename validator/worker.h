// The worker process: evaluations run in `sigil-validator`, started by the
// server for each run, so that a model that crashes, hangs or exhausts memory
// fails its evaluation and nothing else.
//
// The child gets: its own process group; a scratch directory as its working
// directory (removed afterwards); rlimits on address space, CPU time, file
// size and core dumps; no network (a new network namespace where the kernel
// allows it, else a seccomp filter refusing Internet sockets); the input
// files as read-only descriptors it inherits; the job as JSON on stdin; its
// outcome as JSON on stdout. The parent enforces the wall-clock limit with
// SIGKILL, and turns every way the child can end into an EvalOutcome.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "validator/evaluation.h"

namespace sigil::validator {

// The smallest address-space limit (RLIMIT_AS) under which the worker still
// loads LibTorch and a small model. Measured on Debian's LibTorch 1.13.1 with
// MALLOC_ARENA_MAX=2 (which RunInWorker sets): a small model peaks at ~160 MiB
// RSS but ~600 MiB of address space on a 2-core host and ~780 MiB with 16
// intra-op threads (~13 MiB per thread). Below that LibTorch fails to start,
// or stalls creating threads until the time limit. worker_test.cc checks
// that a run fits and that a runaway allocation stops at it. Specs refuse
// less (eval_spec.cc); hosts with many more cores should set EvalJob::threads.
inline constexpr uint64_t kMinWorkerMemoryBytes = 1024ull << 20;

// The child learns from this variable which network isolation its parent put
// it in ("netns", "seccomp", "none"); without it, WorkerMain applies one.
inline constexpr const char* kWorkerIsolationEnv = "SIGIL_WORKER_ISOLATION";

struct WorkerOptions {
  std::string executable;      // path of sigil-validator
  std::string scratch_parent;  // a scratch directory is made inside it
  uint32_t time_limit_s = 600;
  uint64_t memory_limit_bytes = 8ull << 30;
  // Descriptors the child inherits (files the job names as /dev/fd/N).
  std::vector<int> inherit_fds;
  // Set from another thread to stop the run: the child is killed and the
  // outcome says "cancelled".
  const std::atomic<bool>* cancel = nullptr;
};

// Runs job in a worker process and waits for it. Crashes, signals, time and
// memory limits, unparseable output: outcome.ok = false with the reason
// ("the model ran past the time limit of 5 s", "killed by signal 11
// (Segmentation fault)", "out of memory (limit 512 MiB): ..."), exit_code or
// signal set. Errors: kInvalidArgument without an executable; kInternal when
// the process cannot be started.
core::Result<EvalOutcome> RunInWorker(const EvalJob& job, const WorkerOptions& options);

// The path of sigil-validator next to the running program (same directory,
// or ../validator/ in a build tree), or empty when there is none.
std::string FindWorkerExecutable();

// The worker's side (defined in worker_main.cc, which links LibTorch): reads
// a job from in_fd, applies the network isolation the environment allows
// unless its parent did, runs it, writes the outcome to out_fd. With out_fd 1,
// the outcome goes to a copy of it and fd 1 becomes stderr, so nothing the
// model prints mixes with the outcome. Returns the exit code for main: 0 when
// an outcome was written for a readable job, 2 for an unreadable job (an
// outcome says why), 3 when the outcome could not be written.
int WorkerMain(int in_fd, int out_fd);

// Puts the calling process into the strongest network isolation the kernel
// allows: a new network namespace (directly, or inside a new user namespace),
// else a seccomp filter under which socket() fails with EACCES for every
// family but AF_UNIX. Returns "netns", "seccomp" or "none". Irreversible.
// REQUIRES: the process has one thread (user namespaces demand it).
std::string ApplyNetworkIsolation();

}  // namespace sigil::validator
