#include <catch2/catch.hpp>

#include "scanner/scanner.h"
#include "tests/scanner/corpus.h"

namespace sigil::scanner {
namespace {

using testing::FindRule;
using testing::Pickle;
using testing::Rules;

// The global a blocking pickle.global finding names, or "".
std::string BlockedGlobal(const FileReport& r) {
  for (const Finding& f : r.findings) {
    if (f.rule == "pickle.global" && f.severity == Severity::kCritical) return f.global;
  }
  return "";
}

TEST_CASE("pickle: GLOBAL os.system with REDUCE is critical, and the call is described",
          "[scanner]") {
  Pickle p(2);
  p.Call("os", "system", "echo pwned").Stop();
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  CHECK(r.format == Format::kPickle);
  CHECK(r.verdict == Verdict::kBlocked);
  const Finding* g = FindRule(r, "pickle.global");
  REQUIRE(g != nullptr);
  CHECK(g->global == "os.system");
  CHECK(g->severity == Severity::kCritical);
  CHECK(g->offset == 2);
  const Finding* call = FindRule(r, "pickle.call");
  REQUIRE(call != nullptr);
  CHECK(call->message.find("'echo pwned'") != std::string::npos);
  CHECK(call->message.find("REDUCE") != std::string::npos);
  CHECK(r.globals == std::vector<std::string>{"os.system"});
}

TEST_CASE("pickle: STACK_GLOBAL through memo indirection after decoys are popped", "[scanner]") {
  Pickle p(4);
  p.Str("os").Put(5).Pop();
  p.Str("system").Put(6).Pop();
  p.Str("collections").Str("OrderedDict").Pop().Pop();  // decoys a pattern matcher would see
  p.Get(5).Get(6).StackGlobal().Str("id").Tuple1().Reduce().Stop();
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(BlockedGlobal(r) == "os.system");
  CHECK(FindRule(r, "pickle.global")->message.find("STACK_GLOBAL") != std::string::npos);
}

TEST_CASE("pickle: MEMOIZE indices follow the memo size", "[scanner]") {
  Pickle p(4);
  p.Str("decoy").Memoize().Pop();            // memo[0]
  p.Str("subprocess").Memoize().Pop();       // memo[1]
  p.Str("check_output").Memoize().Pop();     // memo[2]
  p.Get(1).Get(2).StackGlobal().Str("id").Tuple1().Reduce().Stop();
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  CHECK(BlockedGlobal(r) == "subprocess.check_output");
}

TEST_CASE("pickle: INST imports and calls with the items above the mark", "[scanner]") {
  Pickle p(0);
  p.Mark().Raw("S'echo pwned'\n").Inst("os", "system").Raw(".");
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  CHECK(r.format == Format::kPickle);
  CHECK(BlockedGlobal(r) == "os.system");
  const Finding* call = FindRule(r, "pickle.call");
  REQUIRE(call != nullptr);
  CHECK(call->message.find("INST calls os.system with ('echo pwned',)") != std::string::npos);
}

TEST_CASE("pickle: OBJ and NEWOBJ apply their class", "[scanner]") {
  Pickle obj(2);
  obj.Mark().Global("subprocess", "Popen").Str("id").Obj().Stop();
  FileReport r = ScanBytes(obj.bytes());
  INFO(Rules(r));
  CHECK(BlockedGlobal(r) == "subprocess.Popen");
  CHECK(FindRule(r, "pickle.call")->message.find("OBJ calls subprocess.Popen") != std::string::npos);

  Pickle newobj(2);
  newobj.Global("socket", "socket").EmptyTuple().NewObj().Stop();
  r = ScanBytes(newobj.bytes());
  CHECK(BlockedGlobal(r) == "socket.socket");
  CHECK(FindRule(r, "pickle.call")->message.find("NEWOBJ") != std::string::npos);
}

TEST_CASE("pickle: dotted names resolve through attributes", "[scanner]") {
  Pickle p(4);
  p.Str("pathlib").Str("os.system").StackGlobal().Str("id").Tuple1().Reduce().Stop();
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  CHECK(BlockedGlobal(r) == "pathlib.os.system");

  // An allow-listed class is not a free pass for its attributes.
  Pickle attr(4);
  attr.Str("collections").Str("OrderedDict.__init__.__globals__").StackGlobal().Stop();
  r = ScanBytes(attr.bytes());
  INFO(Rules(r));
  CHECK(BlockedGlobal(r) == "collections.OrderedDict.__init__.__globals__");

  Pickle torch_attr(4);
  torch_attr.Str("torch").Str("serialization.os.system").StackGlobal().Stop();
  r = ScanBytes(torch_attr.bytes());
  CHECK(BlockedGlobal(r) == "torch.serialization.os.system");
}

TEST_CASE("pickle: builtins, operator and functools callables are critical", "[scanner]") {
  struct Case {
    std::string module;
    std::string name;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{
           {"builtins", "getattr", "builtins.getattr"},
           {"builtins", "eval", "builtins.eval"},
           {"__builtin__", "exec", "builtins.exec"},  // Python 2 name, mapped
           {"operator", "attrgetter", "operator.attrgetter"},
           {"operator", "methodcaller", "operator.methodcaller"},
           {"functools", "partial", "functools.partial"},
           {"functools", "reduce", "functools.reduce"},
           {"torch", "load", "torch.load"},
           {"torch.serialization", "load", "torch.serialization.load"},
           {"runpy", "run_path", "runpy.run_path"},
           {"importlib", "import_module", "importlib.import_module"},
           {"webbrowser", "open", "webbrowser.open"},
           {"shutil", "rmtree", "shutil.rmtree"},
           {"pickle", "loads", "pickle.loads"},
           {"_pickle", "loads", "_pickle.loads"},
           {"marshal", "loads", "marshal.loads"},
           {"types", "FunctionType", "types.FunctionType"},
           {"ctypes", "CDLL", "ctypes.CDLL"},
           {"pty", "spawn", "pty.spawn"},
           {"posix", "system", "posix.system"},
           {"nt", "system", "nt.system"},
       }) {
    Pickle p(2);
    p.Call(c.module, c.name, "x").Stop();
    FileReport r = ScanBytes(p.bytes());
    INFO(c.module + "." + c.name + " " + Rules(r));
    CHECK(r.verdict == Verdict::kBlocked);
    CHECK(BlockedGlobal(r) == c.expect);
  }
}

TEST_CASE("pickle: getattr applied to an imported global is resolved", "[scanner]") {
  Pickle p(2);
  p.Global("builtins", "getattr").Global("collections", "OrderedDict").Str("fromkeys").Tuple2()
      .Reduce().Stop();
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  bool resolved = false;
  for (const Finding& f : r.findings) resolved |= f.global == "collections.OrderedDict.fromkeys";
  CHECK(resolved);
  CHECK(BlockedGlobal(r) == "builtins.getattr");
}

TEST_CASE("pickle: anything off the allow-list is at least medium", "[scanner]") {
  Pickle p(2);
  p.Global("mypackage.models", "Net").EmptyTuple().Reduce().Stop();
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  const Finding* g = FindRule(r, "pickle.global");
  REQUIRE(g != nullptr);
  CHECK(g->severity == Severity::kMedium);
  CHECK(g->global == "mypackage.models.Net");

  ScanOptions lenient;
  lenient.block_at = Severity::kHigh;
  CHECK(ScanBytes(p.bytes(), lenient).verdict == Verdict::kClean);
}

TEST_CASE("pickle: the allow-list for model data", "[scanner]") {
  struct Case {
    std::string module;
    std::string name;
  };
  for (const Case& c : std::vector<Case>{
           {"collections", "OrderedDict"},
           {"torch._utils", "_rebuild_tensor_v2"},
           {"torch._utils", "_rebuild_parameter"},
           {"torch._utils", "_rebuild_qtensor"},
           {"torch", "FloatStorage"},
           {"torch", "BFloat16Storage"},
           {"torch.cuda", "HalfStorage"},
           {"torch", "Size"},
           {"torch", "device"},
           {"torch", "bfloat16"},
           {"torch", "float8_e4m3fn"},
           {"torch.nn.parameter", "Parameter"},
           {"numpy.core.multiarray", "_reconstruct"},
           {"numpy", "ndarray"},
           {"numpy", "dtype"},
           {"_codecs", "encode"},
       }) {
    Pickle p(2);
    p.Global(c.module, c.name).EmptyTuple().Reduce().Stop();
    FileReport r = ScanBytes(p.bytes());
    INFO(c.module + "." + c.name + " " + Rules(r));
    CHECK(r.verdict == Verdict::kClean);
    CHECK(r.globals == std::vector<std::string>{c.module + "." + c.name});
  }
  // Near misses are not on it.
  for (const Case& c : std::vector<Case>{{"torch._utils", "_load_from_bytes"},
                                         {"torch", "Storage.__new__"},
                                         {"collections", "defaultdict"},
                                         {"numpy.core.multiarray", "scalar"},
                                         {"torch.jit._pickle", "build_intlist"},
                                         {"torchx", "FloatStorage"}}) {
    Pickle p(2);
    p.Global(c.module, c.name).EmptyTuple().Reduce().Stop();
    FileReport r = ScanBytes(p.bytes());
    INFO(c.module + "." + c.name + " " + Rules(r));
    CHECK(r.verdict == Verdict::kBlocked);
  }
}

TEST_CASE("pickle: a state dict as torch writes it is clean", "[scanner]") {
  FileReport r = ScanBytes(testing::TorchDataPkl(3));
  INFO(Rules(r));
  CHECK(r.format == Format::kPickle);
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.findings.empty());
  CHECK(r.globals == std::vector<std::string>{"collections.OrderedDict",
                                              "torch.FloatStorage",
                                              "torch._utils._rebuild_tensor_v2"});
}

TEST_CASE("pickle: frames that disagree with their contents", "[scanner]") {
  // Frame says 3 bytes but the GLOBAL inside runs past it.
  Pickle p(4);
  p.Frame(3).Call("os", "system", "id").Stop();
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(FindRule(r, "pickle.frame_mismatch") != nullptr);
  CHECK(BlockedGlobal(r) == "os.system");

  // A second FRAME before the first is consumed.
  Pickle q(4);
  q.Frame(6).None().Frame(2).Pop().None().Stop();
  r = ScanBytes(q.bytes());
  INFO(Rules(r));
  CHECK(FindRule(r, "pickle.frame_mismatch") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);

  // Frames that match their contents are fine.
  Pickle ok(4);
  std::string body = Pickle(0).None().Stop().bytes();
  ok.Frame(body.size()).Raw(body);
  r = ScanBytes(ok.bytes());
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kClean);

  // A frame longer than the data is malformed.
  Pickle longer(4);
  longer.Frame(100).None().Stop();
  r = ScanBytes(longer.bytes());
  CHECK(r.verdict == Verdict::kInvalid);
  CHECK(FindRule(r, "pickle.malformed") != nullptr);
}

TEST_CASE("pickle: concatenated pickles are read to the end", "[scanner]") {
  Pickle first(2);
  first.EmptyDict().Stop();
  Pickle second(2);
  second.Call("os", "system", "id").Stop();
  FileReport r = ScanBytes(first.bytes() + second.bytes());
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  const Finding* g = FindRule(r, "pickle.global");
  REQUIRE(g != nullptr);
  CHECK(g->offset == first.size() + 2);

  // Garbage after a clean pickle is malformed, not ignored.
  r = ScanBytes(first.bytes() + "\xff\xfe");
  CHECK(r.verdict == Verdict::kInvalid);
  CHECK(FindRule(r, "pickle.malformed") != nullptr);
}

TEST_CASE("pickle: protocol 0 text pickles without magic", "[scanner]") {
  FileReport r = ScanBytes("cos\nsystem\n(S'echo pwned'\ntR.");
  INFO(Rules(r));
  CHECK(r.format == Format::kPickle);
  CHECK(BlockedGlobal(r) == "os.system");

  // UNICODE's raw-unicode-escape spells the module; STACK_GLOBAL works in
  // any protocol.
  r = ScanBytes("Vo\\u0073\nVsystem\n\x93(Vid\ntR.");
  INFO(Rules(r));
  CHECK(BlockedGlobal(r) == "os.system");

  // STRING escapes too.
  r = ScanBytes("S'\\x6fs'\nS'sys\\164em'\n\x93(tR.");
  INFO(Rules(r));
  CHECK(BlockedGlobal(r) == "os.system");

  // A benign protocol 0 pickle: a list of ints.
  r = ScanBytes("(lp0\nI1\naI2\na.");
  INFO(Rules(r));
  CHECK(r.format == Format::kPickle);
  CHECK(r.verdict == Verdict::kClean);

  // Text that merely starts like a pickle is not one.
  r = ScanBytes("(this is a README)\n");
  CHECK(r.format == Format::kUnknown);
  CHECK(r.verdict == Verdict::kClean);
}

TEST_CASE("pickle: evasions that leave the callable unresolvable", "[scanner]") {
  // STACK_GLOBAL on a computed value.
  Pickle dynamic(4);
  dynamic.Global("collections", "OrderedDict").EmptyTuple().Reduce().Str("system").StackGlobal()
      .Stop();
  FileReport r = ScanBytes(dynamic.bytes());
  INFO(Rules(r));
  CHECK(FindRule(r, "pickle.dynamic_global") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);

  // Calling something that is not an imported global.
  Pickle call(2);
  call.Global("collections", "OrderedDict").EmptyTuple().Reduce().EmptyTuple().Reduce().Stop();
  r = ScanBytes(call.bytes());
  INFO(Rules(r));
  CHECK(FindRule(r, "pickle.call_unresolved") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);

  // Extension codes come from the loading process's copyreg registry.
  Pickle ext(2);
  ext.Raw("\x82\x01").EmptyTuple().Reduce().Stop();
  r = ScanBytes(ext.bytes());
  CHECK(FindRule(r, "pickle.extension") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);

  // BUILD on a class sets attributes on the class itself.
  Pickle build(2);
  build.Global("collections", "OrderedDict").None().EmptyDict().Tuple2().Build().Stop();
  r = ScanBytes(build.bytes());
  INFO(Rules(r));
  CHECK(FindRule(r, "pickle.build_global") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);
}

TEST_CASE("pickle: malformed streams keep what was found before the error", "[scanner]") {
  Pickle p(2);
  p.Global("os", "system").Str("id");  // truncated: no REDUCE, no STOP
  FileReport r = ScanBytes(p.bytes());
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(BlockedGlobal(r) == "os.system");
  CHECK(FindRule(r, "pickle.malformed") != nullptr);

  for (const std::string& bad : {
           std::string("\x80\x02h\x07."),          // GET of a key never stored
           std::string("\x80\x02."),               // STOP on an empty stack
           std::string("\x80\x02t."),              // TUPLE without MARK
           std::string("\x80\x02\xff"),            // unknown opcode
           std::string("\x80\x02X\xff\xff\xff\x7f"),  // string longer than the data
           std::string("\x80\x02\x8b\xff\xff\xff\xff."),  // LONG4 with negative length
           std::string("\x80\x02\x80\x06N."),      // protocol 6
           std::string("\x80\x02" "cos\n\nN."),     // GLOBAL of an empty name
       }) {
    FileReport b = ScanBytes(bad);
    INFO(Rules(b));
    CHECK(b.format == Format::kPickle);
    CHECK(b.verdict == Verdict::kInvalid);
    CHECK(FindRule(b, "pickle.malformed") != nullptr);
  }
}

TEST_CASE("pickle: limits end the analysis with an invalid verdict", "[scanner]") {
  std::string many_nones = "\x80\x02" + std::string(5000, 'N') + ".";
  ScanOptions small;
  small.max_pickle_stack = 1000;
  FileReport r = ScanBytes(many_nones, small);
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kInvalid);
  CHECK(FindRule(r, "limit.pickle") != nullptr);
  CHECK(ScanBytes(many_nones).verdict == Verdict::kClean);

  ScanOptions few_ops;
  few_ops.max_pickle_ops = 100;
  r = ScanBytes(many_nones, few_ops);
  CHECK(FindRule(r, "limit.pickle") != nullptr);

  std::string memo;
  for (int i = 0; i < 300; ++i) memo += "N\x94";
  ScanOptions small_memo;
  small_memo.max_pickle_memo = 100;
  r = ScanBytes("\x80\x04" + memo + ".", small_memo);
  CHECK(FindRule(r, "limit.pickle") != nullptr);

  std::string slow = "\x80\x02";
  for (int i = 0; i < 200000; ++i) slow += "N0";
  slow += "N.";
  ScanOptions no_time;
  no_time.time_limit_ms = 0;
  r = ScanBytes(slow, no_time);
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kInvalid);
  CHECK(FindRule(r, "limit.time") != nullptr);
}

TEST_CASE("pickle: deep nesting and many findings stay bounded", "[scanner]") {
  std::string deep = "\x80\x02N" + std::string(200000, '\x85') + ".";
  FileReport r = ScanBytes(deep);
  CHECK(r.verdict == Verdict::kClean);

  Pickle many(2);
  for (int i = 0; i < 50; ++i) many.Global("evil" + std::to_string(i), "f").Pop();
  many.None().Stop();
  ScanOptions few;
  few.max_findings = 10;
  r = ScanBytes(many.bytes(), few);
  INFO(Rules(r));
  CHECK(r.findings.size() == 11);
  CHECK(r.findings.back().rule == "limit.findings");
  CHECK(r.verdict == Verdict::kBlocked);
}

}  // namespace
}  // namespace sigil::scanner
