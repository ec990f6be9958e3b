// The driver of the corpus regression tests: feeds every file under the
// directories (or files) named on the command line to the fuzz target's
// LLVMFuzzerTestOneInput, the way libFuzzer replays a corpus, so g++ builds
// and CI run the checked-in inputs without clang. A target reports a broken
// invariant by aborting (fuzz_check.h), which fails the test; the file being
// run is printed first so the failure names it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv)
    __attribute__((weak));

namespace {

namespace fs = std::filesystem;

bool RunFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  std::fprintf(stderr, "running %s (%zu bytes)\n", path.c_str(), bytes.size());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()),
                         bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    if (fs::is_directory(argv[i], ec)) {
      std::vector<fs::path> paths;
      for (const auto& entry : fs::recursive_directory_iterator(argv[i])) {
        if (entry.is_regular_file()) paths.push_back(entry.path());
      }
      std::sort(paths.begin(), paths.end());
      for (const fs::path& p : paths) files += RunFile(p) ? 1 : 0;
    } else if (!RunFile(argv[i])) {
      return 1;
    } else {
      ++files;
    }
  }
  if (files == 0) {
    std::fprintf(stderr,
                 "no corpus files found: an empty corpus tests nothing\n");
    return 1;
  }
  std::fprintf(stderr, "%d inputs ran without a broken invariant\n", files);
  return 0;
}
