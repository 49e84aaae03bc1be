// The restricted pickle codec: real DCP .metadata pickles (protocols 4 and 5), every value
// kind, the memo's shared references, writer/reader round trips, and hostile input: refused
// globals, limits on nesting, memo and lengths, truncation at every byte (issue 5).
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "core/error.h"
#include "error_checks.h"
#include "format_test_helpers.h"
#include "formats/pickle/pickle_reader.h"
#include "formats/pickle/pickle_writer.h"

namespace ckconv {
namespace {

using namespace std::string_literals;

using test::kFixtures;
using test::kTorchVersions;
using test::read_file;

std::string u32(uint32_t value) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}
std::string u64(uint64_t value) {
  return u32(static_cast<uint32_t>(value)) + u32(value >> 32);
}
std::string unicode(const std::string& text) {
  return "X" + u32(text.size()) + text;
}
std::string short_unicode(const std::string& text) {
  return "\x8c" + std::string(1, static_cast<char>(text.size())) + text;
}

// Decoding must fail with kBadInput and a message holding `fragment` and the source name.
void expect_pickle_refused(const std::string& pickle, const std::string& fragment) {
  try {
    read_pickle(pickle, "evil.pkl");
    FAIL("accepted a pickle that should fail with: " << fragment);
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kBadInput);
    std::string message = error.what();
    CHECK_MESSAGE(message.find(fragment) != std::string::npos, message);
    CHECK_MESSAGE(message.rfind("evil.pkl", 0) == 0, message);
  }
}

TEST_CASE("pickle: real DCP .metadata of PyTorch 2.6 (protocol 4) and 2.14 (protocol 5)") {
  for (const std::string& version : kTorchVersions) {
    CAPTURE(version);
    std::string bytes = read_file(kFixtures / "formats" / version / "ck" / ".metadata");
    PickleDocument document = read_pickle(bytes, ".metadata");
    const PickleValue& root = document.root();
    REQUIRE(root.is_call_of("torch.distributed.checkpoint.metadata", "Metadata"));
    REQUIRE(root.state != nullptr);
    const PickleValue* tensors = root.state->find("state_dict_metadata");
    REQUIRE(tensors != nullptr);
    REQUIRE(tensors->is_dict());
    std::vector<std::string> keys;
    for (const auto& [key, value] : tensors->entries) keys.push_back(key->text);
    CHECK(keys == std::vector<std::string>{"tok_embeddings.weight", "norm.weight",
                                           "train_state.step", "train_state.ntokens_seen",
                                           "lr_scheduler.last_epoch", "misc.0", "misc.1"});
    // The memo shares the class object between the two TensorStorageMetadata instances.
    const PickleValue* first = tensors->entries[0].second;
    const PickleValue* second = tensors->entries[1].second;
    CHECK(&first->callable() == &second->callable());
    // torch.Size([4, 3]) of tok_embeddings.weight.
    const PickleValue* size = first->state->find("size");
    REQUIRE(size != nullptr);
    CHECK(size->is_call_of("torch", "Size"));
    CHECK(size->arguments().items[0]->items.size() == 2);
    CHECK(size->arguments().items[0]->items[0]->int_value == 4);
    const PickleValue* storage_meta = root.state->find("storage_meta");
    REQUIRE(storage_meta != nullptr);
    CHECK(
        storage_meta->state->find("checkpoint_id")
            ->is_call_of(version == "torch2.6_py3.13" ? "pathlib._local" : "pathlib", "PosixPath"));
    CHECK((root.state->find("version") != nullptr) == (version == "torch2.14_py3.14"));
  }
}

TEST_CASE("pickle: every truncation of a real .metadata is refused cleanly") {
  for (const std::string& version : kTorchVersions) {
    std::string bytes = read_file(kFixtures / "formats" / version / "ck" / ".metadata");
    for (size_t length = 0; length < bytes.size(); ++length) {
      CAPTURE(length);
      CHECK_THROWS_KIND(read_pickle(std::string_view(bytes).substr(0, length), "cut"),
                        ErrorKind::kBadInput);
    }
  }
}

TEST_CASE("pickle: scalar encodings") {
  auto single = [](const std::string& body) {
    static std::vector<PickleDocument> keep;  // values live as long as their document
    keep.push_back(read_pickle("\x80\x02" + body + ".", "scalar"));
    return &keep.back().root();
  };
  CHECK(single("K\xff")->int_value == 255);
  CHECK(single("M\xff\xff")->int_value == 65535);
  CHECK(single("J\xfe\xff\xff\xff")->int_value == -2);
  CHECK(single(std::string("\x8a\x00", 2))->int_value == 0);
  CHECK(single(std::string("\x8a\x05\x00\x00\x00\x80\x00", 7))->int_value == int64_t{1} << 31);
  CHECK(single("\x8a\x01\xff")->int_value == -1);
  CHECK(single(std::string("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80", 10))->int_value ==
        INT64_MIN);
  // 2^63 needs 9 bytes: beyond int64, kept as a big integer record.
  const PickleValue* big = single(std::string("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00", 11));
  CHECK(big->kind == PickleKind::kBigInt);
  CHECK(big->text.size() == 9);
  // Redundant sign-extension bytes still fit an int64.
  CHECK(single(std::string("\x8b\x0a\x00\x00\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xff", 15))
            ->int_value == -2);
  CHECK(single(std::string("G\x3f\xf8\x00\x00\x00\x00\x00\x00", 9))->float_value == 1.5);
  CHECK(single("\x88")->bool_value);
  CHECK(single("N")->is_none());
  CHECK(single(short_unicode("h\xc3\xa9"))->text == "h\xc3\xa9");
  CHECK(single("C\x03"
               "abc")
            ->kind == PickleKind::kBytes);
  CHECK(single("U\x02"
               "ok")
            ->text == "ok");
  // Protocol 2 pickles bytes as _codecs.encode(str, 'latin1').
  const PickleValue* bytes =
      single("c_codecs\nencode\n" + unicode("a\xc3\xbf") + unicode("latin1") + "\x86R");
  CHECK(bytes->kind == PickleKind::kBytes);
  CHECK(bytes->text == "a\xff");
}

TEST_CASE("pickle: containers, marks, frames and the memo") {
  // protocol 4 with a FRAME; MEMOIZE, BINPUT and LONG_BINGET share one table.
  std::string body = "\x95" + u64(0) +
                     "]\x94"
                     "0" +  // [] memo 0
                     "}r" +
                     u32(300) + "0" +                      // {} memo 300
                     "(K\x01K\x02K\x03K\x04t" +            // (1,2,3,4)
                     "h\x00"s + "j" + u32(300) + "\x87" +  // (tuple, list, dict)
                     "h\x00"
                     "K\x07"
                     "a0"s +  // list.append(7) after memoization
                     "j" +
                     u32(300) + short_unicode("k") +
                     "K\x08"
                     "s0";
  PickleDocument document = read_pickle("\x80\x04" + body + ".", "containers");
  const PickleValue& root = document.root();
  REQUIRE(root.is_tuple());
  REQUIRE(root.items.size() == 3);
  CHECK(root.items[0]->items.size() == 4);
  // The list inside the tuple is the memoized list, appended to afterwards.
  REQUIRE(root.items[1]->kind == PickleKind::kList);
  REQUIRE(root.items[1]->items.size() == 1);
  CHECK(root.items[1]->items[0]->int_value == 7);
  REQUIRE(root.items[2]->find("k") != nullptr);
  CHECK(root.items[2]->find("k")->int_value == 8);

  // OrderedDict() becomes an ordered dict that SETITEMS fills; its BUILD state is kept.
  PickleDocument ordered = read_pickle(
      "\x80\x02"
      "ccollections\nOrderedDict\n)R(" +
          unicode("a") + "K\x01" + unicode("b") + "K\x02u}" + unicode("_metadata") + "}sb.",
      "ordered");
  CHECK(ordered.root().ordered_dict);
  CHECK(ordered.root().entries.size() == 2);
  REQUIRE(ordered.root().state != nullptr);
  CHECK(ordered.root().state->find("_metadata") != nullptr);

  // Sets in both protocols.
  CHECK(read_pickle("\x80\x04\x8f(K\x01K\x02\x90.", "set").root().items.size() == 2);
  CHECK(read_pickle("\x80\x02"
                    "cbuiltins\nset\n]K\x01"
                    "a\x85R.",
                    "set")
            .root()
            .kind == PickleKind::kSet);
}

TEST_CASE("pickle: a cyclic structure and a very deep chain decode and free without recursion") {
  // l = []; l.append(l)
  PickleDocument cycle = read_pickle(
      "\x80\x02]q\x00h\x00"
      "a."s,
      "cycle");
  CHECK(cycle.root().items[0] == &cycle.root());
  // 200000 nested lists built through the memo with a constant stack size.
  std::string deep = "\x80\x02]q\x00"s;
  for (int i = 0; i < 200000; ++i)
    deep +=
        "]q\x01"
        "0h\x00h\x01"
        "a0h\x01q\x00"
        "0"s;
  deep += ".";
  PickleDocument document = read_pickle(deep, "deep");
  CHECK(document.value_count() == 200001);
}

TEST_CASE("pickle: dangerous globals are refused by name") {
  expect_pickle_refused(
      "\x80\x02"
      "cos\nsystem\n" +
          unicode("echo pwned") + "\x85R.",
      "os.system");
  expect_pickle_refused(
      "\x80\x02"
      "cposix\nsystem\n" +
          unicode("id") + "\x85R.",
      "posix.system");
  expect_pickle_refused(
      "\x80\x02"
      "cbuiltins\neval\n" +
          unicode("1+1") + "\x85R.",
      "builtins.eval");
  expect_pickle_refused(
      "\x80\x02"
      "cbuiltins\ngetattr\n.",
      "builtins.getattr");
  expect_pickle_refused(
      "\x80\x02"
      "csubprocess\nPopen\n(" +
          unicode("sh") + "tR.",
      "subprocess.Popen");
  expect_pickle_refused(
      "\x80\x02"
      "ctorch\nload\n.",
      "torch.load");
  expect_pickle_refused(
      "\x80\x02"
      "ctorch._utils\n_rebuild_tensor_v2.__globals__\n.",
      "refusing global");
  // STACK_GLOBAL forms (protocol 4): plain, memoized and with non-string operands.
  expect_pickle_refused("\x80\x04" + short_unicode("os") + short_unicode("system") + "\x93.",
                        "os.system");
  expect_pickle_refused("\x80\x04" + short_unicode("builtins") + "\x94" + short_unicode("exec") +
                            "\x94h\x00h\x01\x93."s,
                        "builtins.exec");
  expect_pickle_refused("\x80\x04K\x01K\x02\x93.", "STACK_GLOBAL needs two str values");
  CHECK(is_allowed_pickle_global("torch", "BFloat16Storage"));
  CHECK(is_allowed_pickle_global("torch", "float8_e4m3fn"));
  CHECK_FALSE(is_allowed_pickle_global("torch", "Storage.__init__"));
  CHECK_FALSE(is_allowed_pickle_global("torch.distributed.checkpoint.metadata", "os"));
}

TEST_CASE("pickle: malformed streams are refused with a clear message") {
  expect_pickle_refused("", "truncated");
  expect_pickle_refused("\x80\x02", "truncated");
  expect_pickle_refused("\x80\x01N.", "pickle protocol 1");
  expect_pickle_refused("\x80\x02I1\n.", "unsupported pickle opcode 0x49");
  expect_pickle_refused("\x80\x02NN.", "2 values on the stack");
  expect_pickle_refused("\x80\x02N.N", "unexpected bytes after STOP");
  expect_pickle_refused(
      "\x80\x02"
      "0.",
      "stack underflow");
  expect_pickle_refused("\x80\x02(N.", "unclosed MARK");
  expect_pickle_refused("\x80\x02t.", "no MARK");
  expect_pickle_refused("\x80\x02(" + std::string("a") + ".", "stack underflow");
  expect_pickle_refused(
      "\x80\x02}K\x01"
      "a.",
      "APPEND on dict");
  expect_pickle_refused("\x80\x02]K\x01K\x02s.", "SETITEM on list");
  expect_pickle_refused("\x80\x02}(K\x01u.", "odd number");
  expect_pickle_refused("\x80\x02NK\x01R.", "expected a tuple");
  expect_pickle_refused("\x80\x02K\x01)\x81.", "expected a class");
  expect_pickle_refused("\x80\x02K\x01}b.", "BUILD on int");
  expect_pickle_refused(
      "\x80\x02"
      "ccollections\nCounter\n)R}b}b.",
      "BUILD applied twice");
  expect_pickle_refused("\x80\x02h\x05.", "memo index 5 was never stored");
  expect_pickle_refused("\x80\x02" + std::string("X\x02\x00\x00\x00\xff\xfe", 7) + ".",
                        "not valid UTF-8");
  expect_pickle_refused("\x80\x02" + std::string("X\x03\x00\x00\x00\xe0\x80\x80", 8) + ".",
                        "UTF-8");
  expect_pickle_refused("\x80\x02U\x01\xe9.", "not ASCII");
  expect_pickle_refused(
      "\x80\x02"
      "cos\nsys",
      "unterminated GLOBAL");
}

TEST_CASE("pickle: limits stop hostile sizes before allocating") {
  // A 4 GiB string declared in a 10-byte pickle.
  expect_pickle_refused(
      "\x80\x02X\x00\x00\x00\x10"
      "abc."s,
      "truncated: needs 268435456 more bytes");
  expect_pickle_refused(
      "\x80\x02X\xff\xff\xff\xff"
      "abc.",
      "exceeds the limit");
  expect_pickle_refused("\x80\x04\x8d" + u64(uint64_t{1} << 62) + ".", "exceeds the limit");
  expect_pickle_refused("\x80\x02\x8b\xff\xff\xff\x7f.", "exceeds the limit");
  expect_pickle_refused("\x80\x02\x8b\xff\xff\xff\xff.", "negative length");
  expect_pickle_refused("\x80\x02j\xff\xff\xff\xff.", "never stored");
  expect_pickle_refused("\x80\x02" + std::string(kMaxPickleMarkDepth + 1, '(') + ".",
                        "MARKs nest deeper");
  expect_pickle_refused("\x80\x02" + std::string(kMaxPickleStackSize + 1, 'N') + ".",
                        "stack exceeds");
}

TEST_CASE("pickle: the number of decoded values is capped, popped ones included") {
  // NONE then POP, repeated: the stack never grows, but every value stays in the document.
  std::string pairs;
  for (int i = 0; i < 1000; ++i) pairs += "N0";
  const std::string pickle = "\x80\x02" + pairs + "N.";
  CHECK(read_pickle(pickle, "ok", 1001).root().kind == PickleKind::kNone);
  try {
    read_pickle(pickle, "evil.pkl", 1000);
    FAIL("accepted more values than the limit");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kBadInput);
    CHECK_MESSAGE(
        std::string(error.what()).find("more than the limit of 1000 values") != std::string::npos,
        error.what());
  }
}

TEST_CASE("pickle: builtins.set(list) copies share one budget (amplification)") {
  // A list of 2^20 items, then set(list) 20 times: each REDUCE costs 8 input bytes but copies
  // 2^20 pointers, so without a budget ~100 bytes per copy could ask for gigabytes.
  std::string list = "\x80\x02]q\x00(N"s + std::string((size_t{1} << 20) - 1, '2') + "e";
  std::string copy = "cbuiltins\nset\nh\x00\x85R0"s;
  std::string copies;
  for (int i = 0; i < 20; ++i) copies += copy;
  expect_pickle_refused(list + copies + ".", "builtins.set() copies exceed the limit");
  CHECK(read_pickle(list + copy + ".", "ok").root().items.size() == size_t{1} << 20);
}

TEST_CASE("pickle: writer output reads back, using only weights-only opcodes") {
  PickleWriter writer;
  writer.empty_dict();
  writer.mark();
  const std::vector<int64_t> ints = {0,
                                     255,
                                     256,
                                     65535,
                                     65536,
                                     -1,
                                     INT32_MIN,
                                     INT32_MAX,
                                     int64_t{1} << 31,
                                     -(int64_t{1} << 40),
                                     INT64_MAX,
                                     INT64_MIN};
  for (size_t i = 0; i < ints.size(); ++i) {
    writer.string("i" + std::to_string(i));
    writer.integer(ints[i]);
  }
  writer.string("tuples");
  writer.begin_tuple(6);
  for (size_t size : {0, 1, 2, 3, 4, 7}) writer.int_tuple(Shape(size, 9));
  writer.end_tuple(6);
  writer.string("memo");
  writer.empty_list();
  writer.memo_put(300);
  writer.memo_get(300);
  writer.append();  // a list holding itself
  writer.string("call");
  writer.global("torch", "Size");
  writer.begin_tuple(1);
  writer.int_tuple({2, 3});
  writer.end_tuple(1);
  writer.reduce();
  writer.string("object");
  writer.global("torch.distributed.checkpoint.metadata", "BytesStorageMetadata");
  writer.begin_tuple(0);
  writer.end_tuple(0);
  writer.new_object();
  writer.empty_dict();
  writer.string("x");
  writer.none();
  writer.set_item();
  writer.build();
  writer.string("flags");
  writer.empty_list();
  writer.mark();
  writer.boolean(true);
  writer.boolean(false);
  writer.appends();
  writer.string("persistent");
  writer.begin_tuple(1);
  writer.string("storage");
  writer.end_tuple(1);
  writer.persistent_id();
  writer.set_items();
  std::string bytes = writer.finish();

  PickleDocument document = read_pickle(bytes, "written");
  const PickleValue& root = document.root();
  for (size_t i = 0; i < ints.size(); ++i) {
    CAPTURE(i);
    REQUIRE(root.find("i" + std::to_string(i)) != nullptr);
    CHECK(root.find("i" + std::to_string(i))->int_value == ints[i]);
  }
  const PickleValue* tuples = root.find("tuples");
  REQUIRE(tuples->items.size() == 6);
  CHECK(tuples->items[5]->items.size() == 7);
  CHECK(tuples->items[0]->items.empty());
  const PickleValue* memo = root.find("memo");
  CHECK(memo->items[0] == memo);
  CHECK(root.find("call")->is_call_of("torch", "Size"));
  CHECK(root.find("object")->state->find("x")->is_none());
  CHECK(root.find("flags")->items.size() == 2);
  CHECK(root.find("persistent")->kind == PickleKind::kPersistentId);

  // Exact encodings of the integer forms (CPython's choices).
  auto encoded = [](int64_t value) {
    PickleWriter w;
    w.integer(value);
    std::string all = w.finish();
    return all.substr(2, all.size() - 3);
  };
  CHECK(encoded(5) == "K\x05");
  CHECK(encoded(300) == std::string("M\x2c\x01", 3));
  CHECK(encoded(-2) == "J\xfe\xff\xff\xff");
  CHECK(encoded(int64_t{1} << 31) == std::string("\x8a\x05\x00\x00\x00\x80\x00", 7));
  CHECK(encoded(-(int64_t{1} << 31) - 1) == std::string("\x8a\x05\xff\xff\xff\x7f\xff", 7));

  // Only the opcodes torch's weights-only unpickler accepts (docs/formats.md "torch.save zip
  // archives"): scan the stream opcode by opcode.
  const std::string allowed =
      "c\x81R"
      "bae"
      "su(t\x85\x86\x87N\x88\x89)]}"
      "JKMX"
      "Qhjqr\x8a\x80.";
  size_t at = 0;
  while (at < bytes.size()) {
    char op = bytes[at];
    CAPTURE(at);
    REQUIRE(allowed.find(op) != std::string::npos);
    ++at;
    switch (static_cast<uint8_t>(op)) {
      case 'c':
        at = bytes.find('\n', bytes.find('\n', at) + 1) + 1;
        break;
      case 'J':
      case 'j':
      case 'r':
        at += 4;
        break;
      case 'K':
      case 'h':
      case 'q':
      case 0x80:
        at += 1;
        break;
      case 'M':
        at += 2;
        break;
      case 'X': {
        uint32_t length = 0;
        std::memcpy(&length, bytes.data() + at, 4);
        at += 4 + length;
        break;
      }
      case 0x8a:
        at += 1 + static_cast<uint8_t>(bytes[at]);
        break;
      default:
        break;
    }
  }
}

}  // namespace
}  // namespace ckconv
