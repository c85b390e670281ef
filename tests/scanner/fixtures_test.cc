// Benign files written by PyTorch and NumPy themselves
// (fixtures/make_fixtures.py), and hostile variants derived from them.
#include <catch2/catch.hpp>

#include <random>

#include "core/fs.h"
#include "scanner/scanner.h"
#include "tests/scanner/corpus.h"

namespace sigil::scanner {
namespace {

using testing::FindRule;
using testing::Rules;

std::string Fixture(const std::string& name) { return std::string(SIGIL_SCANNER_FIXTURES) + "/" + name; }

std::string ReadFixture(const std::string& name) {
  auto data = core::ReadFile(Fixture(name));
  REQUIRE(data.ok());
  return *data;
}

TEST_CASE("fixtures: files PyTorch and NumPy write are clean", "[scanner]") {
  struct Case {
    std::string file;
    Format format;
  };
  for (const Case& c : std::vector<Case>{
           {"state_dict.pt", Format::kTorchZip},
           {"checkpoint.pt", Format::kTorchZip},
           {"state_dict_legacy.pt", Format::kTorchLegacy},
           {"torchscript.pt", Format::kTorchScript},
           {"tensors.pt", Format::kTorchZip},
           {"nested.pt", Format::kTorchZip},
           {"traced.pt", Format::kTorchScript},
           {"array.npy", Format::kNumpy},
           {"array_fortran.npy", Format::kNumpy},
           {"structured.npy", Format::kNumpy},
           {"objects.npy", Format::kNumpy},
           {"arrays.npz", Format::kNumpyZip},
           {"arrays_compressed.npz", Format::kNumpyZip},
       }) {
    auto r = ScanFile(Fixture(c.file));
    REQUIRE(r.ok());
    INFO(c.file + " " + Rules(*r));
    CHECK(r->format == c.format);
    CHECK(r->verdict == Verdict::kClean);
    for (const Finding& f : r->findings) CHECK(f.severity == Severity::kInfo);
  }
}

TEST_CASE("fixtures: what the scanner reports about benign files", "[scanner]") {
  auto sd = ScanFile(Fixture("state_dict.pt"));
  REQUIRE(sd.ok());
  CHECK(sd->globals == std::vector<std::string>{"collections.OrderedDict", "torch.FloatStorage",
                                                "torch._utils._rebuild_tensor_v2"});
  CHECK(sd->findings.empty());

  auto ckpt = ScanFile(Fixture("checkpoint.pt"));
  REQUIRE(ckpt.ok());
  CHECK(std::count(ckpt->globals.begin(), ckpt->globals.end(), "torch._utils._rebuild_parameter") ==
        1);

  auto ts = ScanFile(Fixture("torchscript.pt"));
  REQUIRE(ts.ok());
  INFO(Rules(*ts));
  CHECK(ts->torchscript_code ==
        std::vector<std::string>{"torchscript/code/__torch__.py",
                                 "torchscript/code/__torch__/torch/nn/modules/linear.py"});
  CHECK(FindRule(*ts, "torchscript.code") != nullptr);
  // __torch__ classes defined by code/ are structural, not imports.
  for (const std::string& g : ts->globals) CHECK(g.rfind("__torch__", 0) != 0);

  auto legacy = ScanFile(Fixture("state_dict_legacy.pt"));
  REQUIRE(legacy.ok());
  CHECK(legacy->globals == sd->globals);

  auto objects = ScanFile(Fixture("objects.npy"));
  REQUIRE(objects.ok());
  INFO(Rules(*objects));
  CHECK(FindRule(*objects, "npy.object_dtype") != nullptr);
  CHECK(std::count(objects->globals.begin(), objects->globals.end(), "numpy.ndarray") == 1);
}

// Replaces one same-length byte string inside data (which must contain it).
std::string Patch(std::string data, const std::string& from, const std::string& to) {
  REQUIRE(from.size() == to.size());
  size_t at = data.find(from);
  REQUIRE(at != std::string::npos);
  data.replace(at, from.size(), to);
  return data;
}

TEST_CASE("fixtures: hostile edits of real files are caught", "[scanner]") {
  // data.pkl's first global swapped for one of the same length.
  std::string sd = ReadFixture("state_dict.pt");
  FileReport r = ScanBytes(Patch(sd, "collections\nOrderedDict", "subprocess\ncheck_output"));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  const Finding* g = FindRule(r, "pickle.global");
  REQUIRE(g != nullptr);
  CHECK(g->global == "subprocess.check_output");
  CHECK(g->location == "state_dict/data.pkl");
  CHECK(FindRule(r, "zip.crc_mismatch") != nullptr);

  // The legacy format's data pickle (the fourth).
  std::string legacy = ReadFixture("state_dict_legacy.pt");
  r = ScanBytes(Patch(legacy, "collections\nOrderedDict", "subprocess\ncheck_output"));
  INFO(Rules(r));
  CHECK(r.format == Format::kTorchLegacy);
  CHECK(FindRule(r, "pickle.global")->global == "subprocess.check_output");

  // TorchScript classes must be defined by the archive's own code/.
  std::string ts = ReadFixture("torchscript.pt");
  r = ScanBytes(Patch(ts, "__torch__\nTiny", "__torch__\nEvil"));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(FindRule(r, "pickle.torchscript_class") != nullptr);
  r = ScanBytes(Patch(ts, "__torch__.torch.nn.modules.linear\nLinear",
                      "__torch__.torch.nn.modules.lineax\nLinear"));
  INFO(Rules(r));
  CHECK(FindRule(r, "pickle.torchscript_class") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);
  // Outside a TorchScript archive, __torch__ names are not structural.
  r = ScanBytes(testing::Pickle(2).Global("__torch__", "Tiny").Stop().bytes());
  CHECK(FindRule(r, "pickle.torchscript_class") != nullptr);

  // An object array whose pickle imports something else.
  std::string obj = ReadFixture("objects.npy");
  r = ScanBytes(Patch(obj, "numpy\nndarray", "posix\nsystemx"));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
}

TEST_CASE("fixtures: truncations and random corruption never crash", "[scanner]") {
  std::mt19937 rng(1234);
  for (const char* name : {"state_dict.pt", "torchscript.pt", "state_dict_legacy.pt", "array.npy",
                           "objects.npy", "arrays_compressed.npz", "nested.pt", "traced.pt"}) {
    std::string data = ReadFixture(name);
    for (size_t n = 0; n < data.size(); n += 13) {
      FileReport r = ScanBytes(std::string_view(data).substr(0, n));
      CHECK(r.size == n);
    }
    for (int i = 0; i < 300; ++i) {
      std::string mutated = data;
      int flips = 1 + static_cast<int>(rng() % 8);
      for (int k = 0; k < flips; ++k) {
        mutated[rng() % mutated.size()] = static_cast<char>(rng() & 0xff);
      }
      FileReport r = ScanBytes(mutated);
      CHECK(r.size == mutated.size());
    }
  }
}

}  // namespace
}  // namespace sigil::scanner
