// Writes the seed corpora of the fuzz targets into OUT/<target>/ (run by tests/fuzz/run.sh), so no
// binary file is committed and the seeds follow the formats as the code writes them today. Each
// file is tiny (the largest, a model file, is 3.3 KB; about 30 KB in all).
//   OUT/idx    idx3 files of 0, 1 and 3 images and idx1 files of 0, 1 and 3 labels, raw and
//              gzip-compressed, plus a two-member gzip (one image split over two members)
//   OUT/model  valid model files (save_model_file) of tiny architectures and a checkpoint
//              (save_checkpoint), with mode byte 0 (file as is), 1 (checksum stripped: the target
//              appends it) and 3 (arch as text, header and checksum stripped), see fuzz_model.cpp
//   OUT/cli    NUL-separated command lines, see fuzz_cli.cpp
//   OUT/image  a 28x28 drawn "7" as grey and RGBA PNG, JPEG, BMP, binary PGM and PPM, and a 1x1 GIF
// Usage: make_seeds OUT
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "checkpoint.h"
#include "image_io.h"
#include "model.h"
#include "model_io.h"

// A private copy of stb_image_write (static functions, so no clash with convnet_core's): its JPEG
// encoder shifts a negative int left (stb_image_write.h:1263), undefined behaviour UBSan stops on,
// so this file is built without UBSan (tests/fuzz/CMakeLists.txt). Only the seeds are written with
// it; the code under test is fully sanitized.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"

namespace {

using Bytes = std::vector<uint8_t>;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "make_seeds: %s\n", what.c_str());
  std::exit(1);
}

void write_file(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!out) die("cannot write " + path);
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.eof() && !in) die("cannot read " + path);
  return b;
}

void make_dir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) die("cannot create " + path);
}

void put_be32(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(v >> shift));
}

Bytes idx_images(uint32_t n) {
  Bytes b;
  put_be32(b, 2051);
  put_be32(b, n);
  put_be32(b, 28);
  put_be32(b, 28);
  for (uint32_t i = 0; i < n * 784; ++i) b.push_back(static_cast<uint8_t>((i * 7) % 256));
  return b;
}

Bytes idx_labels(uint32_t n) {
  Bytes b;
  put_be32(b, 2049);
  put_be32(b, n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i % 10));
  return b;
}

// One gzip member (RFC 1952) holding b.
Bytes gzip(const Bytes& b) {
  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("deflateInit2");
  Bytes out(deflateBound(&zs, b.size()) + 32);
  zs.next_in = const_cast<Bytef*>(b.data());
  zs.avail_in = static_cast<uInt>(b.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) die("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void idx_seeds(const std::string& dir) {
  for (uint32_t n : {0u, 1u, 3u}) {
    const std::string i = dir + "/images" + std::to_string(n), l = dir + "/labels" + std::to_string(n);
    write_file(i + ".idx3", idx_images(n));
    write_file(i + ".idx3.gz", gzip(idx_images(n)));
    write_file(l + ".idx1", idx_labels(n));
    write_file(l + ".idx1.gz", gzip(idx_labels(n)));
  }
  const Bytes one = idx_images(1);
  Bytes two_members = gzip(Bytes(one.begin(), one.begin() + 100));
  const Bytes rest = gzip(Bytes(one.begin() + 100, one.end()));
  two_members.insert(two_members.end(), rest.begin(), rest.end());
  write_file(dir + "/images1-two-members.idx3.gz", two_members);
}

// Writes one model-target seed per mode (fuzz_model.cpp) for the model file `file` of `arch`.
void write_model_modes(const std::string& dir, const std::string& name, const std::string& arch, const Bytes& file) {
  Bytes as_is{0};
  as_is.insert(as_is.end(), file.begin(), file.end());
  Bytes no_crc{1};
  no_crc.insert(no_crc.end(), file.begin(), file.end() - 4);
  const size_t after_arch = 16 + arch.size();  // magic, version, arch length, arch
  Bytes arch_text{3};
  arch_text.insert(arch_text.end(), arch.begin(), arch.end());
  arch_text.push_back(0);
  arch_text.insert(arch_text.end(), file.begin() + static_cast<std::ptrdiff_t>(after_arch), file.end() - 4);
  write_file(dir + "/" + name + "-as-is", as_is);
  write_file(dir + "/" + name + "-crc-appended", no_crc);
  write_file(dir + "/" + name + "-arch-text", arch_text);
}

void model_seeds(const std::string& dir) {
  const char* const archs[] = {
      "pool-pool-pool-pool-flatten-dense10",
      "pool-pool-pool-conv2x3-flatten-dropout0.5-dense3relu-dense10",
      "conv1x1-flatten-dense1relu-dense10",  // one digit away from large layers: 3.3 KB
  };
  const std::string tmp = dir + "/.model.tmp";
  int k = 0;
  for (const char* arch : archs) {
    const convnet::Model model = convnet::build_model(arch);
    convnet::save_model_file(tmp, convnet::make_model_file(model, convnet::init_params(model, 1),
                                                           {{"dataset", "mnist"}, {"epochs", "1"}}));
    write_model_modes(dir, "model" + std::to_string(k++), model.spec, read_file(tmp));
  }
  // A checkpoint of the first architecture as `train --checkpoint` writes it, in the middle of epoch 2.
  const convnet::Model model = convnet::build_model(archs[0]);
  convnet::TrainRecipe recipe;
  recipe.arch = model.spec;
  recipe.train_images = 100;
  recipe.batch = 16;
  convnet::BackendConfig config;
  config.max_batch = recipe.batch;
  const std::unique_ptr<convnet::Backend> backend = convnet::make_cpu_backend(model, config);
  convnet::TrainState state;
  state.epochs_done = 1;
  state.epoch_step = 2;
  state.global_step = convnet::steps_per_epoch(recipe) + 2;
  convnet::save_checkpoint(tmp, model, *backend, recipe, convnet::RunSettings{}, state);
  write_model_modes(dir, "checkpoint", model.spec, read_file(tmp));
  std::remove(tmp.c_str());
}

void cli_seeds(const std::string& dir) {
  const std::vector<std::vector<std::string>> lines = {
      {"train", "--arch", "keras", "--epochs", "3", "--batch-size", "64", "--seed", "7", "--device", "cpu"},
      {"train", "--optimizer", "sgd", "--lr=0.05", "--momentum", "0.9", "--nesterov", "--val-split", "0"},
      {"train", "--limit-train", "1000", "--no-test", "--save", "m.cnvn", "--dataset", "fashion", "--tf32"},
      {"train", "--arch", "conv32x5-pool-conv64-pool-flatten-dense128relu-dropout0.25-dense10", "--data", "d"},
      {"train", "--log", "run.jsonl", "--checkpoint", "run.ckpt", "--checkpoint-every", "2", "--graphs", "off"},
      {"train", "--resume", "run.ckpt", "--epochs", "5", "--fusion", "on", "--sync-launches", "--graphs=off"},
      {"train", "--resume=run.ckpt", "--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--seed", "7"},
      {"train", "--timing", "--warmup-steps", "3", "--device", "gpu", "--fusion=off"},
      {"train", "--timing", "20", "--tf32", "--graphs", "off"},
      {"train", "--profile-steps", "4", "--warmup-steps=0", "--batch-size", "256"},
      {"eval", "--model", "m.cnvn", "--batch-size", "256", "--device", "auto", "--dataset", "mnist"},
      {"eval", "--model=m.cnvn", "--confusion-png", "cm.png", "--graphs", "on", "--fusion", "off"},
      {"eval", "--model", "m.cnvn", "--device", "gpu", "--sync-launches", "--graphs", "off", "--data", "d"},
      {"predict", "--model", "m.cnvn", "--json", "7.png", "three.jpg"},
      {"predict", "--model", "m.cnvn", "--save-preprocessed", "pre", "--device", "cpu", "a.pgm"},
      {"show", "--model", "m.cnvn", "--out", "grid.png", "--count", "100", "--cols", "10", "--scale", "2"},
      {"show", "--model=m.cnvn", "--misclassified", "--seed", "3", "--dataset", "fashion", "--sync-launches"},
      {"train", "--help"},
      {"summary", "--arch", "seed96"},
      {"summary", "--arch=conv8x7,pool,flatten,dropout0.125,dense10"},
      {"devices"},
  };
  int k = 0;
  for (const auto& line : lines) {
    Bytes b;
    for (size_t i = 0; i < line.size(); ++i) {
      if (i) b.push_back(0);
      b.insert(b.end(), line[i].begin(), line[i].end());
    }
    write_file(dir + "/line" + std::to_string(k++), b);
  }
}

// A 28x28 "7": a bar and a diagonal, dark ink (20) on light paper (235), with channels 1..4.
Bytes digit_pixels(int channels) {
  Bytes px;
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const bool ink = (y >= 5 && y <= 7 && x >= 7 && x <= 20) || (y > 7 && y <= 23 && std::abs(x - (20 - (y - 7) / 2)) <= 1);
      const uint8_t v = ink ? 20 : 235;
      for (int c = 0; c < channels; ++c) px.push_back(c == 3 ? 255 : v);
    }
  return px;
}

void append_to(void* ctx, void* data, int n) {
  auto* out = static_cast<Bytes*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
}

Bytes pnm(const char* magic, int channels) {
  const std::string header = std::string(magic) + "\n28 28\n255\n";
  Bytes b(header.begin(), header.end());
  const Bytes px = digit_pixels(channels);
  b.insert(b.end(), px.begin(), px.end());
  return b;
}

void image_seeds(const std::string& dir) {
  for (int channels : {1, 4}) {
    Bytes png;
    const Bytes px = digit_pixels(channels);
    if (!stbi_write_png_to_func(append_to, &png, 28, 28, channels, px.data(), 28 * channels)) die("png");
    write_file(dir + "/digit" + std::to_string(channels) + ".png", png);
  }
  Bytes jpg, bmp;
  const Bytes rgb = digit_pixels(3);
  if (!stbi_write_jpg_to_func(append_to, &jpg, 28, 28, 3, rgb.data(), 90)) die("jpg");
  if (!stbi_write_bmp_to_func(append_to, &bmp, 28, 28, 3, rgb.data())) die("bmp");
  write_file(dir + "/digit.jpg", jpg);
  write_file(dir + "/digit.bmp", bmp);
  write_file(dir + "/digit.pgm", pnm("P5", 1));
  write_file(dir + "/digit.ppm", pnm("P6", 3));
  // The classic 1x1 GIF89a: one colour table, one image descriptor, a 2-code LZW stream.
  const uint8_t gif[] = {'G',  'I',  'F',  '8',  '9',  'a',  1,    0,    1,    0,    0x80, 0,    0,    0,    0,
                         0,    0xff, 0xff, 0xff, 0x2c, 0,    0,    0,    0,    1,    0,    1,    0,    0,    2,
                         2,    0x44, 0x01, 0,    0x3b};
  write_file(dir + "/one-pixel.gif", Bytes(gif, gif + sizeof gif));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) die("usage: make_seeds OUT");
  const std::string out = argv[1];
  make_dir(out);
  make_dir(out + "/idx");
  make_dir(out + "/model");
  make_dir(out + "/cli");
  make_dir(out + "/image");
  idx_seeds(out + "/idx");
  model_seeds(out + "/model");
  cli_seeds(out + "/cli");
  image_seeds(out + "/image");
  return 0;
}
