// Safe publication: staging, the journaled publish into an existing directory, what
// ckconv owns there, the recovery of interrupted runs, and the choice of scratch space.
#include "pipeline/output_directory.h"

#include <doctest/doctest.h>

#include <fstream>

#include "core/error.h"
#include "error_checks.h"
#include "format_test_helpers.h"
#include "formats/safetensors/safetensors_index.h"
#include "pipeline/publish.h"
#include "verify/scratch_space.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

// Above any pid_max, so kill(pid, 0) says no such process: the run that left it is dead.
constexpr const char* kDeadPid = "999999999";

void touch(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

size_t entries(const fs::path& directory) {
  return static_cast<size_t>(
      std::distance(fs::directory_iterator(directory), fs::directory_iterator()));
}

PublishStep move(const std::string& name) {
  return {PublishStep::Kind::kMove, name};
}
PublishStep remove(const std::string& name) {
  return {PublishStep::Kind::kRemove, name};
}
PublishStep keep(const std::string& name) {
  return {PublishStep::Kind::kKeep, name};
}
PublishStep redirect(const std::string& name) {
  return {PublishStep::Kind::kRedirect, name};
}
PublishStep drop() {
  return {PublishStep::Kind::kDropKept, ".ckconv-previous"};
}

TEST_CASE("output directory: a new output appears whole, only when published") {
  test::TempDir dir;
  const fs::path target = dir / "out";
  {
    OutputDirectory output(target, false);
    touch(output.staging() / "model.safetensors", "new");
    CHECK(!fs::exists(target));
  }  // destroyed without publish: as if the conversion failed
  CHECK(fs::is_empty(dir.path()));
  {
    OutputDirectory output(target, false);
    touch(output.staging() / "model.safetensors", "first");
    CHECK(output.publish().empty());
  }
  CHECK(test::read_file(target / "model.safetensors") == "first");
  CHECK(entries(dir.path()) == 1);
}

TEST_CASE("output directory: other people's files in an existing output are kept") {
  test::TempDir dir;
  const fs::path clone = dir / "clone";
  touch(clone / ".git" / "HEAD", "ref: refs/heads/main\n");
  touch(clone / "README.md", "# model card\n");
  touch(clone / "tokenizer.json", "{}");
  {
    OutputDirectory output(clone, false);  // no --force: nothing of ckconv's kinds is there
    touch(output.staging() / "model.safetensors", "weights");
    touch(output.staging() / "config.json", "{}");
    CHECK(output.publish().empty());
  }
  CHECK(test::read_file(clone / ".git" / "HEAD") == "ref: refs/heads/main\n");
  CHECK(test::read_file(clone / "README.md") == "# model card\n");
  CHECK(test::read_file(clone / "tokenizer.json") == "{}");
  CHECK(test::read_file(clone / "model.safetensors") == "weights");
  CHECK(entries(clone) == 5);  // no staging left

  CHECK_THROWS_KIND(OutputDirectory(clone, false),
                    ErrorKind::kExists);  // now it holds a checkpoint
  OutputDirectory output(clone, true);
  touch(output.staging() / "model.safetensors", "weights 2");
  touch(output.staging() / "config.json", "{}");
  CHECK(output.publish() == std::vector<std::string>{"config.json", "model.safetensors"});
  CHECK(test::read_file(clone / "model.safetensors") == "weights 2");
  CHECK(test::read_file(clone / "README.md") == "# model card\n");
}

TEST_CASE("output directory: an empty existing directory needs no --force; a file is refused") {
  test::TempDir dir;
  fs::create_directory(dir / "empty");
  {
    OutputDirectory output(dir / "empty", false);
    touch(output.staging() / "model.pt", "x");
    output.publish();
  }
  CHECK(test::read_file(dir / "empty" / "model.pt") == "x");
  touch(dir / "file", "not a directory");
  CHECK_THROWS_KIND(OutputDirectory(dir / "file", true), ErrorKind::kExists);
}

TEST_CASE("publish: which files are ckconv's") {
  for (const char* name :
       {"model.safetensors", "model-00001-of-00003.safetensors", "model.safetensors.index.json",
        ".metadata", "__0_0.distcp", "model.pt", "config.json", "generation_config.json"})
    CHECK_MESSAGE(is_ckconv_output_name(name), name);
  for (const char* name : {"README.md", ".git", "tokenizer.json", "adapter_model.safetensors",
                           "notes.txt", ".distcp", "model-1.safetensors"})
    CHECK_MESSAGE(!is_ckconv_output_name(name), name);
  CHECK(!is_weight_file_name("config.json"));
}

TEST_CASE("publish: steps put the commit point last and never show a mixed checkpoint") {
  const std::string index = "model.safetensors.index.json";
  const std::string a2 = "model-00001-of-00002.safetensors",
                    b2 = "model-00002-of-00002.safetensors";
  const std::string a3 = "model-00001-of-00003.safetensors",
                    b3 = "model-00002-of-00003.safetensors",
                    c3 = "model-00003-of-00003.safetensors";
  // Same single file: the weights replace atomically, config.json just before.
  CHECK(plan_publish({"config.json", "model.safetensors"}, {"config.json", "model.safetensors"}) ==
        std::vector<PublishStep>{move("config.json"), move("model.safetensors")});
  // 3 shards then 2: new names, the old index stays valid until the new one replaces it.
  CHECK(plan_publish({a2, b2, "config.json", index}, {a3, b3, c3, "config.json", index}) ==
        std::vector<PublishStep>{move("config.json"), move(a2), move(b2), move(index), remove(a3),
                                 remove(b3), remove(c3)});
  // 2 shards again over 2, the old index listing both: the old shards are kept (hard links)
  // and the old index redirected to them before the new shards take their names.
  CHECK(plan_publish({a2, b2, index}, {a2, b2, index}, {a2, b2}) ==
        std::vector<PublishStep>{keep(a2), keep(b2), redirect(index), move(a2), move(b2),
                                 move(index), drop()});
  // The same without a readable old index: nothing to redirect, the old index goes first.
  CHECK(plan_publish({a2, b2, index}, {a2, b2, index}) ==
        std::vector<PublishStep>{remove(index), move(a2), move(b2), move(index)});
  // DCP over DCP: the new data file has another name (dcp_data_file_name_for), the new
  // .metadata replaces the old one, then the old data file goes.
  CHECK(plan_publish({".metadata", "__0_1.distcp"}, {".metadata", "__0_0.distcp"}) ==
        std::vector<PublishStep>{move("__0_1.distcp"), move(".metadata"), remove("__0_0.distcp")});
  // A data file of an old name (a directory changed since the name was chosen): the old
  // .metadata goes first, as the fallback.
  CHECK(plan_publish({".metadata", "__0_0.distcp"}, {".metadata", "__0_0.distcp"}) ==
        std::vector<PublishStep>{remove(".metadata"), move("__0_0.distcp"), move(".metadata")});
  // One file then shards: readers take model.safetensors before the index, so the new shards
  // and index come in beside it and its removal switches readers to the new checkpoint.
  CHECK(plan_publish({a2, b2, index}, {"model.safetensors"}) ==
        std::vector<PublishStep>{move(a2), move(b2), move(index), remove("model.safetensors")});
  // Shards then one file: the new file first, then the old index, then its shards.
  CHECK(plan_publish({"model.safetensors"}, {a2, b2, index, "generation_config.json"}) ==
        std::vector<PublishStep>{move("model.safetensors"), remove(index), remove(a2), remove(b2)});
  // A kept folder left behind is removed at the end.
  CHECK(plan_publish({"model.safetensors"}, {"model.safetensors"}, {}, true) ==
        std::vector<PublishStep>{move("model.safetensors"), drop()});
}

TEST_CASE("publish: the DCP data file takes the first name the output does not hold") {
  test::TempDir dir;
  CHECK(dcp_data_file_name_for(dir / "missing") == "__0_0.distcp");
  touch(dir / "out" / "README.md", "card");
  CHECK(dcp_data_file_name_for(dir / "out") == "__0_0.distcp");
  touch(dir / "out" / "__0_0.distcp", "old");
  CHECK(dcp_data_file_name_for(dir / "out") == "__0_1.distcp");
  touch(dir / "out" / "__0_1.distcp", "older");
  CHECK(dcp_data_file_name_for(dir / "out") == "__0_2.distcp");
}

// Old checkpoint: 3 shards; new: 2 shards. Every prefix of the publish, then a run that
// finds the dead run's staging: the output must end up as the new checkpoint.
TEST_CASE("publish: a run killed after any step is finished by the next run") {
  const std::vector<std::string> old_files = {
      "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors", "model.safetensors.index.json", "config.json"};
  const std::vector<std::string> new_files = {"model-00001-of-00002.safetensors",
                                              "model-00002-of-00002.safetensors",
                                              "model.safetensors.index.json", "config.json"};
  const std::vector<PublishStep> steps = plan_publish(new_files, old_files);
  for (size_t done = 0; done <= steps.size(); ++done) {
    CAPTURE(done);
    test::TempDir dir;
    const fs::path target = dir / "out";
    for (const auto& name : old_files) touch(target / name, "old " + name);
    touch(target / "README.md", "kept");
    const fs::path staging = target / (std::string(".ckconv-staging-") + kDeadPid);
    for (const auto& name : new_files) touch(staging / name, "new " + name);
    std::string journal = "ckconv publish journal 1\n";
    for (const auto& step : steps)
      journal += (step.kind == PublishStep::Kind::kMove ? "move " : "remove ") + step.name + "\n";
    test::write_file(staging / "journal", journal + "end\n");
    for (size_t i = 0; i < done; ++i) {  // what the dead run did before it was killed
      if (steps[i].kind == PublishStep::Kind::kMove)
        fs::rename(staging / steps[i].name, target / steps[i].name);
      else
        fs::remove(target / steps[i].name);
    }
    OutputDirectory output(target, true);
    CHECK(output.cleanup_notes().size() == 1);
    CHECK(list_ckconv_files(target) == std::vector<std::string>{"config.json",
                                                                "model-00001-of-00002.safetensors",
                                                                "model-00002-of-00002.safetensors",
                                                                "model.safetensors.index.json"});
    for (const auto& name : new_files) CHECK(test::read_file(target / name) == "new " + name);
    CHECK(test::read_file(target / "README.md") == "kept");
    CHECK(!fs::exists(staging));
  }
}

// What a reader following ckconv's precedence sees: model.safetensors, else the files the
// index names (through the redirect too), their contents joined.
std::string reader_view(const fs::path& target) {
  if (fs::exists(target / "model.safetensors"))
    return test::read_file(target / "model.safetensors");
  const fs::path index = target / "model.safetensors.index.json";
  if (!fs::exists(index)) return "none";
  std::string view;
  for (const auto& [tensor, file] :
       parse_safetensors_index(test::read_file(index), index.string()).weight_map)
    view += (fs::exists(target / file) ? test::read_file(target / file) : "missing") + "|";
  return view;
}

// What a run killed before step `done` had done (the steps' effects without the syncs).
void apply_prefix(const fs::path& target, const fs::path& staging,
                  const std::vector<PublishStep>& steps, size_t done) {
  const fs::path kept = target / kPreviousShardsFolder;
  for (size_t i = 0; i < done; ++i) {
    const std::string& name = steps[i].name;
    switch (steps[i].kind) {
      case PublishStep::Kind::kMove:
        fs::rename(staging / name, target / name);
        break;
      case PublishStep::Kind::kRemove:
        fs::remove(target / name);
        break;
      case PublishStep::Kind::kKeep:
        fs::create_directories(kept);
        fs::create_hard_link(target / name, kept / name);
        break;
      case PublishStep::Kind::kRedirect:
        fs::rename(staging / kRedirectIndexName, target / name);
        break;
      case PublishStep::Kind::kDropKept:
        fs::remove_all(kept);
        break;
    }
  }
}

// Old and new checkpoint: 2 shards of the same names. After every prefix of the publish a
// reader sees all old or all new shards, and the next run finishes the publish.
TEST_CASE("publish: shards over shards of the same names are never mixed, killed anywhere") {
  const std::string a = "model-00001-of-00002.safetensors", b = "model-00002-of-00002.safetensors";
  const std::string index = "model.safetensors.index.json";
  auto index_text = [&](int total) {
    return R"({"metadata": {"total_size": )" + std::to_string(total) +
           R"(}, "weight_map": {"x": ")" + a + R"(", "y": ")" + b + R"("}})";
  };
  for (size_t done = 0;; ++done) {
    CAPTURE(done);
    test::TempDir dir;
    const fs::path target = dir / "out";
    for (const auto& name : {a, b}) touch(target / name, "old " + name);
    touch(target / index, index_text(1));
    const fs::path staging = target / (std::string(".ckconv-staging-") + kDeadPid);
    for (const auto& name : {a, b}) touch(staging / name, "new " + name);
    touch(staging / index, index_text(2));
    const std::vector<PublishStep> steps =
        plan_publish({a, b, index}, {a, b, index}, indexed_shards(target));
    REQUIRE(steps.size() == 7);
    write_redirect_index(target, staging, steps);
    write_publish_journal(staging, steps);
    apply_prefix(target, staging, steps, done);
    const std::string old_view = "old " + a + "|old " + b + "|";
    const std::string new_view = "new " + a + "|new " + b + "|";
    const std::string view = reader_view(target);
    CHECK_MESSAGE((view == old_view || view == new_view), view);
    OutputDirectory output(target, true);
    CHECK(reader_view(target) == new_view);
    CHECK(test::read_file(target / index) == index_text(2));
    CHECK(!fs::exists(target / kPreviousShardsFolder));
    CHECK(!fs::exists(staging));
    if (done == steps.size()) break;
  }
}

TEST_CASE("output directory: leftovers of dead runs are removed, live ones kept") {
  test::TempDir dir;
  touch(dir / (std::string(".out.ckconv-tmp-") + kDeadPid) / "model.safetensors", "partial");
  touch(dir / (std::string(".in.ckconv-verify2-") + kDeadPid) / "x", "scratch");
  touch(dir / ".other.ckconv-tmp-1" / "x", "pid 1 is alive");
  touch(dir / "out" / (std::string(".ckconv-staging-") + kDeadPid) / "model.safetensors",
        "no journal");
  OutputDirectory output(dir / "out", false);
  CHECK(output.cleanup_notes().size() == 3);
  CHECK(!fs::exists(dir / (std::string(".out.ckconv-tmp-") + kDeadPid)));
  CHECK(!fs::exists(dir / (std::string(".in.ckconv-verify2-") + kDeadPid)));
  CHECK(!fs::exists(dir / "out" / (std::string(".ckconv-staging-") + kDeadPid)));
  CHECK(!fs::exists(dir / "out" / "model.safetensors"));
  CHECK(fs::exists(dir / ".other.ckconv-tmp-1" / "x"));
}

TEST_CASE(
    "output directory: an output an earlier version displaced before it was killed comes back") {
  // Earlier versions renamed the old output aside, then the new one in; a kill between the
  // two left only ".out.ckconv-old-<pid>".
  test::TempDir dir;
  touch(dir / (std::string(".out.ckconv-old-") + kDeadPid) / "model.safetensors", "previous");
  CHECK_THROWS_KIND(OutputDirectory(dir / "out", false),
                    ErrorKind::kExists);  // it is back: holds a checkpoint
  CHECK(test::read_file(dir / "out" / "model.safetensors") == "previous");
  // With an output in place, a leftover "old" copy is just removed.
  touch(dir / (std::string(".out.ckconv-old-") + kDeadPid) / "model.safetensors", "older");
  OutputDirectory output(dir / "out", true);
  CHECK(!fs::exists(dir / (std::string(".out.ckconv-old-") + kDeadPid)));
  CHECK(test::read_file(dir / "out" / "model.safetensors") == "previous");
}

TEST_CASE("scratch space: the first writable candidate with room; a clear error otherwise") {
  test::TempDir dir;
  CHECK(choose_scratch_directory({dir / "missing", dir.path()}, 1).directory == dir.path());
  try {
    choose_scratch_directory({dir.path()}, uint64_t{1} << 62);
    FAIL("expected an error");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kIo);
    const std::string message = error.what();
    CHECK(message.find(dir.path().string()) != std::string::npos);
    CHECK(message.find(std::to_string(uint64_t{1} << 62) + " bytes") != std::string::npos);
    CHECK(message.find("free") != std::string::npos);
  }
  CHECK(round_trip_scratch_bytes(64 << 20, false) > round_trip_scratch_bytes(64 << 20, true));
}

}  // namespace
}  // namespace ckconv
