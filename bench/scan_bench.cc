// Measures the model scanner on generated files: a safetensors file and a
// torch.save zip checkpoint of the same size (tensor data the scanner should
// skip), and an opcode-dense pickle (every byte is pickle machine work).
// Beside the pickle: Python's pickletools walking the same file.
//
//   scan_bench [--size-mib N] [--pickle-mb N] [--runs N] [--dir DIR] [--no-python]
//
// Every scan's verdict is printed and must be clean. "examined" counts the
// bytes the scanner asked for, through ScanReader with a counting pread; the
// timed runs use ScanFile.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/random.h"
#include "scanner/scanner.h"

namespace {

using namespace sigil;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int Fail(const core::Status& s) {
  std::fprintf(stderr, "scan_bench: %s\n", s.ToString().c_str());
  return 1;
}

void Le(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

// Writes files from a buffer of random bytes, varied per call so that
// members differ.
class Writer {
 public:
  explicit Writer(int fd) : fd_(fd), random_(16 << 20, '\0') { core::RandomBytes(random_.data(), random_.size()); }
  core::Status Write(std::string_view data) {
    offset_ += data.size();
    return core::WriteAll(fd_, data.data(), data.size(), "bench file");
  }
  // Writes n pseudo-random bytes; returns their CRC-32.
  core::Result<uint32_t> Fill(uint64_t n) {
    uLong crc = crc32(0, nullptr, 0);
    ++salt_;
    for (uint64_t done = 0; done < n;) {
      const size_t step = static_cast<size_t>(std::min<uint64_t>(random_.size(), n - done));
      std::memcpy(random_.data(), &salt_, sizeof(salt_));
      crc = crc32(crc, reinterpret_cast<const Bytef*>(random_.data()), static_cast<uInt>(step));
      RETURN_IF_ERROR(Write(std::string_view(random_.data(), step)));
      done += step;
    }
    return static_cast<uint32_t>(crc);
  }
  uint64_t offset() const { return offset_; }

 private:
  int fd_;
  std::string random_;
  uint64_t salt_ = 0;
  uint64_t offset_ = 0;
};

// Tensor sizes: `count` float32 matrices of 1024 columns tiling total bytes.
std::vector<uint64_t> TensorRows(uint64_t total, int count) {
  const uint64_t rows = total / 4096;
  std::vector<uint64_t> out(count, rows / count);
  out.back() += rows % count;
  return out;
}

std::string TensorName(int i) {
  static const char* kParts[] = {"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj",
                                 "mlp.up_proj", "mlp.down_proj", "mlp.gate_proj", "norm"};
  return "model.layers." + std::to_string(i / 8) + "." + kParts[i % 8] + ".weight";
}

core::Status WriteSafetensors(const std::string& path, uint64_t total, int count) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return core::Internal("cannot create " + path);
  std::vector<uint64_t> rows = TensorRows(total, count);
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  for (int i = 0; i < count; ++i) {
    const uint64_t end = offset + rows[i] * 4096;
    header += ",\"" + TensorName(i) + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(rows[i]) +
              ",1024],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(end) + "]}";
    offset = end;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string prefix;
  Le(&prefix, header.size(), 8);
  Writer w(fd);
  core::Status s = w.Write(prefix + header);
  if (s.ok()) s = w.Fill(offset).status();
  ::close(fd);
  return s;
}

// A pickle writer for the few opcodes the generated streams use.
class Pickle {
 public:
  Pickle() { out_ = "\x80\x02"; }
  void Op(char op) { out_.push_back(op); }
  void Global(const std::string& module, const std::string& name) { out_ += "c" + module + "\n" + name + "\n"; }
  void Unicode(std::string_view s) {
    out_.push_back('X');
    Le(&out_, s.size(), 4);
    out_ += s;
  }
  void Int(uint64_t v) {
    if (v < 256) {
      out_.push_back('K');
      out_.push_back(static_cast<char>(v));
    } else if (v < 65536) {
      out_.push_back('M');
      Le(&out_, v, 2);
    } else {
      out_.push_back('J');
      Le(&out_, v, 4);
    }
  }
  // Memoizes the top of the stack; returns its memo index.
  uint32_t Put() {
    if (memo_ < 256) {
      out_.push_back('q');
      out_.push_back(static_cast<char>(memo_));
    } else {
      out_.push_back('r');
      Le(&out_, memo_, 4);
    }
    return memo_++;
  }
  void Get(uint32_t index) {
    if (index < 256) {
      out_.push_back('h');
      out_.push_back(static_cast<char>(index));
    } else {
      out_.push_back('j');
      Le(&out_, index, 4);
    }
  }
  std::string& bytes() { return out_; }
  uint32_t memo() const { return memo_; }

 private:
  std::string out_;
  uint32_t memo_ = 0;
};

// The state-dict pickle torch.save writes (protocol 2): an OrderedDict of
// _rebuild_tensor_v2 calls whose storages are persistent ids naming
// data/<key>.
std::string StateDictPickle(const std::vector<uint64_t>& rows) {
  Pickle p;
  p.Global("collections", "OrderedDict");
  const uint32_t ordered_dict = p.Put();
  p.Op(')');
  p.Op('R');
  p.Put();
  p.Op('(');
  uint32_t rebuild = 0, float_storage = 0, storage = 0, cpu = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    p.Unicode(TensorName(static_cast<int>(i)));
    p.Put();
    if (i == 0) {
      p.Global("torch._utils", "_rebuild_tensor_v2");
      rebuild = p.Put();
    } else {
      p.Get(rebuild);
    }
    p.Op('(');
    p.Op('(');
    if (i == 0) {
      p.Unicode("storage");
      storage = p.Put();
      p.Global("torch", "FloatStorage");
      float_storage = p.Put();
    } else {
      p.Get(storage);
      p.Get(float_storage);
    }
    p.Unicode(std::to_string(i));
    p.Put();
    if (i == 0) {
      p.Unicode("cpu");
      cpu = p.Put();
    } else {
      p.Get(cpu);
    }
    p.Int(rows[i] * 1024);
    p.Op('t');
    p.Put();
    p.Op('Q');  // BINPERSID
    p.Int(0);
    p.Int(rows[i]);
    p.Int(1024);
    p.Op('\x86');  // TUPLE2
    p.Put();
    p.Int(1024);
    p.Int(1);
    p.Op('\x86');
    p.Put();
    p.Op('\x89');  // NEWFALSE
    p.Get(ordered_dict);
    p.Op(')');
    p.Op('R');
    p.Put();
    p.Op('t');
    p.Put();
    p.Op('R');
    p.Put();
  }
  p.Op('u');  // SETITEMS
  p.Op('.');
  return std::move(p.bytes());
}

core::Status WriteTorchZip(const std::string& path, uint64_t total, int count) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return core::Internal("cannot create " + path);
  std::vector<uint64_t> rows = TensorRows(total, count);
  Writer w(fd);
  std::string central;
  uint16_t entries = 0;
  auto member = [&](const std::string& name, const std::string* data, uint64_t fill) -> core::Status {
    const uint64_t local = w.offset();
    const uint64_t size = data != nullptr ? data->size() : fill;
    std::string header;
    Le(&header, 0x04034b50, 4);
    Le(&header, 20, 2);  // version needed
    Le(&header, 0x0800, 2);  // UTF-8 names
    Le(&header, 0, 2);  // stored
    Le(&header, 0, 4);  // time, date
    const size_t crc_at = header.size();
    Le(&header, 0, 4);
    Le(&header, size, 4);
    Le(&header, size, 4);
    Le(&header, name.size(), 2);
    Le(&header, 0, 2);
    header += name;
    uint32_t crc = 0;
    if (data != nullptr) {
      crc = static_cast<uint32_t>(crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(data->data()),
                                        static_cast<uInt>(data->size())));
      std::string crc_bytes;
      Le(&crc_bytes, crc, 4);
      header.replace(crc_at, 4, crc_bytes);
      RETURN_IF_ERROR(w.Write(header));
      RETURN_IF_ERROR(w.Write(*data));
    } else {
      RETURN_IF_ERROR(w.Write(header));
      ASSIGN_OR_RETURN(crc, w.Fill(fill));
      std::string crc_bytes;
      Le(&crc_bytes, crc, 4);
      RETURN_IF_ERROR(core::PwriteAll(fd, crc_bytes.data(), 4, local + crc_at, "bench zip"));
    }
    Le(&central, 0x02014b50, 4);
    Le(&central, 20, 2);
    Le(&central, 20, 2);
    Le(&central, 0x0800, 2);
    Le(&central, 0, 2);
    Le(&central, 0, 4);
    Le(&central, crc, 4);
    Le(&central, size, 4);
    Le(&central, size, 4);
    Le(&central, name.size(), 2);
    Le(&central, 0, 2);  // extra
    Le(&central, 0, 2);  // comment
    Le(&central, 0, 2);  // disk
    Le(&central, 0, 2);  // internal attributes
    Le(&central, 0, 4);  // external attributes
    Le(&central, local, 4);
    central += name;
    ++entries;
    return core::Status();
  };
  const std::string pickle = StateDictPickle(rows);
  const std::string byteorder = "little", version = "3\n";
  core::Status s = member("archive/data.pkl", &pickle, 0);
  if (s.ok()) s = member("archive/byteorder", &byteorder, 0);
  for (int i = 0; i < count && s.ok(); ++i) s = member("archive/data/" + std::to_string(i), nullptr, rows[i] * 4096);
  if (s.ok()) s = member("archive/version", &version, 0);
  if (s.ok()) {
    std::string end;
    const uint64_t central_at = w.offset();
    Le(&end, 0x06054b50, 4);
    Le(&end, 0, 4);
    Le(&end, entries, 2);
    Le(&end, entries, 2);
    Le(&end, central.size(), 4);
    Le(&end, central_at, 4);
    Le(&end, 0, 2);
    s = w.Write(central + end);
  }
  ::close(fd);
  return s;
}

// A long list of small ints, short strings and pairs, with memo puts and
// gets, appended 1000 at a time: what a pickled dataset index or vocabulary
// looks like. Returns the number of opcodes.
core::Result<uint64_t> WriteDensePickle(const std::string& path, uint64_t target) {
  Pickle p;
  p.Op(']');  // EMPTY_LIST
  p.Put();
  uint64_t ops = 3, k = 0;
  std::string word = "w";
  while (p.bytes().size() + 16 < target) {
    p.Op('(');
    ++ops;
    for (int j = 0; j < 1000 && p.bytes().size() + 16 < target; ++j, ++k) {
      switch (k % 4) {
        case 0:
          p.Int(k & 0xff);
          ops += 1;
          break;
        case 1:
          word.resize(1);
          word += std::to_string(k % 100000);
          p.Unicode(word);
          ops += 1;
          if (k % 64 == 1) {
            p.Put();
            ops += 1;
          }
          break;
        case 2:
          p.Int(k & 0xff);
          p.Int(k & 0xffff);
          p.Op('\x86');
          ops += 3;
          break;
        default:
          p.Get(static_cast<uint32_t>((k * 2654435761u) % p.memo()));
          ops += 1;
      }
    }
    p.Op('e');  // APPENDS
    ++ops;
  }
  p.Op('.');
  ++ops;
  RETURN_IF_ERROR(core::WriteFileAtomic(path, p.bytes()));
  return ops;
}

struct Measured {
  double median_s = 0;
  uint64_t examined = 0;
  scanner::FileReport report;
};

core::Result<Measured> Measure(const std::string& path, int runs) {
  Measured m;
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    auto report = scanner::ScanFile(path);
    times.push_back(Seconds(start));
    if (!report.ok()) return report.status();
    m.report = std::move(*report);
  }
  std::sort(times.begin(), times.end());
  m.median_s = times[times.size() / 2];

  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return core::Internal("cannot open " + path);
  uint64_t examined = 0;
  scanner::ReadAtFn read = [&](uint64_t offset, size_t n, char* out) -> core::Status {
    examined += n;
    for (size_t done = 0; done < n;) {
      ASSIGN_OR_RETURN(size_t got, core::PreadSome(fd, out + done, n - done, offset + done));
      if (got == 0) return core::Internal("short read");
      done += got;
    }
    return core::Status();
  };
  auto counted = scanner::ScanReader(read, m.report.size);
  ::close(fd);
  if (!counted.ok()) return counted.status();
  m.examined = examined;
  return m;
}

void Print(const char* what, const Measured& m) {
  const double mib = static_cast<double>(m.report.size) / (1 << 20);
  const double examined_mib = static_cast<double>(m.examined) / (1 << 20);
  std::printf("%-22s %10.1f MiB  %-12s %-8s %9.4f s  %10.0f MiB/s of file  examined %9.3f MiB (%10.0f MiB/s)  "
              "%zu findings, %zu globals\n",
              what, mib, std::string(scanner::FormatName(m.report.format)).c_str(),
              std::string(scanner::VerdictName(m.report.verdict)).c_str(), m.median_s, mib / m.median_s,
              examined_mib, examined_mib / m.median_s, m.report.findings.size(), m.report.globals.size());
}

// Runs a shell command; returns its wall time, or a negative value on failure.
double TimeCommand(const std::string& command) {
  auto start = Clock::now();
  int rc = std::system(command.c_str());
  double s = Seconds(start);
  return (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0) ? s : -1;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t size_mib = 1024, pickle_mb = 50;
  int runs = 5, tensors = 320;
  bool python = true;
  std::string dir = "/tmp/sigil-scan-bench";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-python") == 0) python = false;
    if (i + 1 >= argc) continue;
    if (std::strcmp(argv[i], "--size-mib") == 0) size_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--pickle-mb") == 0) pickle_mb = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  core::RemoveTree(dir).IgnoreError();
  if (auto s = core::MakeDirs(dir); !s.ok()) return Fail(s);
  const uint64_t total = size_mib << 20;
  const std::string safetensors = dir + "/model.safetensors", zip = dir + "/model.pt", pickle = dir + "/dense.pkl";

  auto start = Clock::now();
  if (auto s = WriteSafetensors(safetensors, total, tensors); !s.ok()) return Fail(s);
  if (auto s = WriteTorchZip(zip, total, tensors); !s.ok()) return Fail(s);
  auto ops = WriteDensePickle(pickle, pickle_mb * 1'000'000);
  if (!ops.ok()) return Fail(ops.status());
  std::printf("== fixtures in %s (%.1f s): %d tensors each; dense pickle %llu opcodes\n", dir.c_str(),
              Seconds(start), tensors, static_cast<unsigned long long>(*ops));

  std::printf("== scanner::ScanFile, median of %d runs, page cache, 1 thread\n", runs);
  bool clean = true;
  for (auto [what, path] : {std::pair{"safetensors", safetensors}, std::pair{"pytorch zip", zip},
                            std::pair{"dense pickle", pickle}}) {
    auto m = Measure(path, runs);
    if (!m.ok()) return Fail(m.status());
    Print(what, *m);
    for (const auto& f : m->report.findings) std::printf("    finding %s: %s\n", f.rule.c_str(), f.message.c_str());
    if (m->report.verdict != scanner::Verdict::kClean) clean = false;
    if (path == pickle) {
      std::printf("%-22s %10.0f opcodes/s\n", "  pickle machine", *ops / m->median_s);
    }
  }

  if (python) {
    const std::string py = "/usr/bin/python3";
    const double startup = TimeCommand(py + " -c pass");
    const double walk = TimeCommand(py +
                                    " -c 'import pickletools,sys; [None for _ in pickletools.genops(open(sys.argv[1],\"rb\"))]' " +
                                    pickle);
    if (walk < 0 || startup < 0) {
      std::printf("python pickletools: could not run %s\n", py.c_str());
    } else {
      const double mib = static_cast<double>(pickle_mb * 1'000'000) / (1 << 20);
      std::printf("%-22s %10.1f MiB  %9.2f s (interpreter start %.2f s)  %8.1f MiB/s  %10.0f opcodes/s\n",
                  "python pickletools", mib, walk, startup, mib / (walk - startup), *ops / (walk - startup));
    }
  }
  core::RemoveTree(dir).IgnoreError();
  if (!clean) {
    std::fprintf(stderr, "scan_bench: a generated file was not clean\n");
    return 1;
  }
  return 0;
}
