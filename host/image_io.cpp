// Reading users' images and writing PNGs (image_io.h) over stb_image / stb_image_write.
//
// load_image_gray reads the whole file, names its format by magic number, asks stbi_info for the
// dimensions (header only) and refuses zero or > kMaxImageSide sides before any pixel buffer
// exists, then decodes. stb does not notice every truncation - its JPEG, BMP, GIF and PNM decoders
// pad a short file with zeros (PNM even with uninitialised memory) and report success - so those
// four formats are first walked here far enough to prove the pixel data is all there. stb refuses
// a short PNG itself (a missing chunk or an incomplete zlib stream), but only after allocating what
// a chunk's length declares, so PNG chunks are walked too. Where stb 2.27 (Debian's) has memory or
// UB bugs on hostile headers (JPEG Huffman tables, PNM numbers), those are checked first as well;
// tests/fuzz/fuzz_image found them.
//
// write_png encodes into memory (stbi_write_png_to_func), writes "<path>.tmp.<pid>" in the same
// folder and renames it over the target, so a reader never sees half a PNG. No fsync: these are
// previews a rerun regenerates, and a thousand fsyncs would dominate a batch.
#include "image_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "errors.h"
#include "output_file.h"
#include "preprocess.h"
#include "stb_image.h"
#include "stb_image_write.h"

namespace convnet {

namespace {

using Bytes = std::vector<uint8_t>;

bool starts_with(const Bytes& b, size_t at, const char* magic, size_t n) {
  return b.size() >= at + n && std::memcmp(b.data() + at, magic, n) == 0;
}

// The format a file's first bytes announce: one of ours, a known one we do not read (named so
// the message can say so), or "" when unknown.
std::string sniff_format(const Bytes& b, bool* supported) {
  *supported = true;
  if (starts_with(b, 0, "\x89PNG\r\n\x1a\n", 8)) return "PNG";
  if (starts_with(b, 0, "\xff\xd8\xff", 3)) return "JPEG";
  if (starts_with(b, 0, "BM", 2)) return "BMP";
  if (starts_with(b, 0, "GIF87a", 6) || starts_with(b, 0, "GIF89a", 6)) return "GIF";
  if (starts_with(b, 0, "P5", 2) || starts_with(b, 0, "P6", 2)) return "PNM";
  *supported = false;
  if (starts_with(b, 0, "P1", 2) || starts_with(b, 0, "P2", 2) || starts_with(b, 0, "P3", 2) ||
      starts_with(b, 0, "P4", 2))
    return "plain-text or 1-bit PNM (P1-P4)";
  if (starts_with(b, 0, "RIFF", 4) && starts_with(b, 8, "WEBP", 4)) return "WebP";
  if (starts_with(b, 0, "II*\0", 4) || starts_with(b, 0, "MM\0*", 4)) return "TIFF";
  if (starts_with(b, 0, "8BPS", 4)) return "PSD";
  if (starts_with(b, 0, "#?RADIANCE", 10) || starts_with(b, 0, "#?RGBE", 6)) return "HDR";
  if (starts_with(b, 4, "ftypheic", 8) || starts_with(b, 4, "ftypheix", 8) || starts_with(b, 4, "ftypmif1", 8))
    return "HEIC";
  if (starts_with(b, 4, "ftypavif", 8)) return "AVIF";
  if (starts_with(b, 0, "\0\0\1\0", 4)) return "ICO";
  if (starts_with(b, 0, "%PDF", 4)) return "PDF";
  return "";
}

// stb_image 2.27 (Debian's libstb-dev) trusts the 16 code counts of each table in a DHT segment:
// counts summing past 256 write past its 257-entry size and 256-entry values arrays (nothings/stb
// issues 1289 and 1291, fixed upstream in 2.28; found here by tests/fuzz/fuzz_image). True when the
// DHT segment whose length field is at `at` has a table like that, read as stb reads it: bytes
// past the end of the file are 0, and a length below 2 holds no table.
bool dht_overflows(const Bytes& b, size_t at) {
  auto byte = [&](size_t i) -> size_t { return i < b.size() ? b[i] : 0; };
  const size_t len = byte(at) << 8 | byte(at + 1);
  for (size_t q = at + 2; len >= 2 && q < at + len;) {
    size_t codes = 0;
    for (size_t i = 1; i <= 16; ++i) codes += byte(q + i);
    if (codes > 256) return true;
    q += 17 + codes;
  }
  return false;
}

// Whether stb could meet such a table anywhere in the file. Up to the first scan the segments are
// walked as stb's header parser does (skipping junk between markers, fill bytes, each segment by
// its declared length); after it, where stb resumes depends on its entropy decoding, so every
// FF C4 (a DHT marker) in the rest is checked: valid entropy-coded data never holds one.
bool jpeg_huffman_overflow(const Bytes& b) {
  size_t p = 2;  // after SOI
  while (p < b.size()) {
    if (b[p++] != 0xff) continue;                     // junk: stb scans on for a marker
    while (p < b.size() && b[p] == 0xff) ++p;         // fill bytes
    if (p >= b.size()) return false;
    const uint8_t m = b[p++];
    if (m == 0xda || m == 0xd9) break;                // SOS (EOI: stb stops; check the rest anyway)
    if ((m >= 0xd0 && m <= 0xd7) || m == 0x01 || m == 0x00) continue;  // no length
    if (m == 0xc4 && dht_overflows(b, p)) return true;
    const size_t len = p + 1 < b.size() ? static_cast<size_t>(b[p]) << 8 | b[p + 1] : 0;
    if (len < 2) return false;                        // stb skips to the end of the data
    p += len;
  }
  for (size_t q = p; q + 1 < b.size(); ++q)
    if (b[q] == 0xff && b[q + 1] == 0xc4 && dht_overflows(b, q + 2)) return true;
  return false;
}

// stb_image 2.27 mallocs its decoder state without clearing it, so a scan that uses a Huffman
// table no DHT segment defined decodes through uninitialised memory: indices anywhere, an
// out-of-bounds read (UBSan "index -916 out of bounds for type 'stbi_uc[256]'", found by
// tests/fuzz/fuzz_image) that can crash or leak memory into pixels. True when a scan stb would
// reach uses such a table: the segments are walked in stb's order (junk before the frame skipped,
// anything stb stops at ends the walk); a baseline scan uses its components' DC and AC tables, a
// progressive one the DC tables in a first DC scan and the AC tables in an AC scan.
bool jpeg_undefined_huffman_table(const Bytes& b) {
  auto byte = [&](size_t i) -> size_t { return i < b.size() ? b[i] : 0; };
  bool defined[2][4] = {}, progressive = false, frame = false;
  size_t p = 2;  // after SOI
  while (p < b.size()) {
    if (b[p++] != 0xff) {
      if (frame) return false;  // stb stops at junk after the frame header
      continue;                 // and skips it before
    }
    while (p < b.size() && b[p] == 0xff) ++p;
    if (p >= b.size()) return false;
    const uint8_t m = b[p++];
    if (m == 0xd9 || m == 0x00 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) return false;  // stb stops
    const size_t len = byte(p) << 8 | byte(p + 1);
    if (len < 2) return false;
    if (m == 0xc4) {
      for (size_t q = p + 2; q < p + len;) {
        const size_t tc = byte(q) >> 4, th = byte(q) & 15;
        if (tc > 1 || th > 3) return false;  // stb refuses the segment
        defined[tc][th] = true;
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += byte(q + i);
        q += 17 + codes;
      }
    }
    if (m == 0xc0 || m == 0xc1 || m == 0xc2) frame = true, progressive = m == 0xc2;
    if (m == 0xda) {
      const size_t n = byte(p + 2), ss = byte(p + 3 + 2 * n), ah = byte(p + 5 + 2 * n) >> 4;
      for (size_t c = 0; c < n; ++c) {
        const size_t td = byte(p + 4 + 2 * c) >> 4, ta = byte(p + 4 + 2 * c) & 15;
        if (td > 3 || ta > 3) return false;  // stb refuses the scan
        const bool dc = !progressive || (ss == 0 && ah == 0), ac = !progressive || ss > 0;
        if ((dc && !defined[0][td]) || (ac && !defined[1][ta])) return true;
      }
      p += len;
      while (p + 1 < b.size() && !(b[p] == 0xff && b[p + 1] != 0x00 && (b[p + 1] < 0xd0 || b[p + 1] > 0xd7))) ++p;
      continue;
    }
    p += len;
  }
  return false;
}

// The 8x8 blocks of a JPEG frame whose SOFn payload (after the length field) is `f`, `n` bytes:
// for each component ceil(ceil(X * h / hmax) / 8) x ceil(ceil(Y * v / vmax) / 8), the fewest any
// scan order codes. 0 when the header is malformed (stb refuses it itself).
uint64_t jpeg_frame_blocks(const uint8_t* f, size_t n) {
  if (n < 6 || n < 6 + 3 * size_t{f[5]}) return 0;
  const uint64_t y = uint64_t{f[1]} << 8 | f[2], x = uint64_t{f[3]} << 8 | f[4];
  uint64_t hmax = 0, vmax = 0, blocks = 0;
  for (size_t c = 0; c < f[5]; ++c) {
    hmax = std::max<uint64_t>(hmax, f[7 + 3 * c] >> 4);
    vmax = std::max<uint64_t>(vmax, f[7 + 3 * c] & 15);
  }
  for (size_t c = 0; c < f[5]; ++c) {
    const uint64_t h = f[7 + 3 * c] >> 4, v = f[7 + 3 * c] & 15;
    if (h == 0 || v == 0) return 0;
    blocks += ((x * h + hmax - 1) / hmax + 7) / 8 * (((y * v + vmax - 1) / vmax + 7) / 8);
  }
  return blocks;
}

// JPEG: walk the marker segments (skipping entropy-coded data, where 0xFF is always followed by
// 0x00 or a restart marker) until the end-of-image marker. Data after it (motion photos) is fine.
// The scans must also be long enough for the frame: every block codes its DC value in at least
// one bit, so fewer scan bytes than blocks / 8 means data is missing. stb decodes what is missing
// as zeros: a 906-byte file declaring 5792x5792 loaded as a 33 Mpx image (found in review of the
// fuzz_image runs: its seed with two header fields changed).
bool jpeg_complete(const Bytes& b) {
  size_t p = 2;  // after SOI
  uint64_t blocks = 0, scan_bytes = 0;
  while (p < b.size()) {
    if (b[p] != 0xff) return false;  // not at a marker: corrupt, stb will say so
    while (p < b.size() && b[p] == 0xff) ++p;  // fill bytes
    if (p >= b.size()) return false;
    const uint8_t m = b[p++];
    if (m == 0xd9) return scan_bytes * 8 >= blocks;        // EOI
    if ((m >= 0xd0 && m <= 0xd7) || m == 0x01) continue;  // no length
    if (p + 2 > b.size()) return false;
    const size_t len = static_cast<size_t>(b[p]) << 8 | b[p + 1];
    if (len < 2 || p + len > b.size()) return false;
    if (m == 0xc0 || m == 0xc1 || m == 0xc2) blocks = jpeg_frame_blocks(&b[p + 2], len - 2);  // the SOFs stb reads
    p += len;
    if (m != 0xda) continue;
    const size_t scan_start = p;
    while (p + 1 < b.size() && !(b[p] == 0xff && b[p + 1] != 0x00 && (b[p + 1] < 0xd0 || b[p + 1] > 0xd7))) ++p;
    if (p + 1 >= b.size()) return false;
    scan_bytes += p - scan_start;
  }
  return false;
}

// BMP, uncompressed or bitfields: the header's pixel offset plus rows padded to 4 bytes.
bool bmp_complete(const Bytes& b) {
  if (b.size() < 34) return false;
  auto u32 = [&](size_t at) { return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 | uint32_t(b[at + 3]) << 24; };
  auto u16 = [&](size_t at) { return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8; };
  const uint32_t header = u32(14);
  const uint64_t offset = u32(10);
  if (header == 12) {  // OS/2: 16-bit sides, never compressed
    const uint64_t stride = (uint64_t{u16(18)} * u16(24) + 31) / 32 * 4;
    return b.size() >= offset + stride * u16(20);
  }
  if (header < 40) return true;  // stb refuses other small headers itself
  // stb reads the compression field as an int and refuses 1, 2 (RLE) and >= 4 itself; anything
  // else, negative values included, it decodes as uncompressed rows, so those rows must be here:
  // a 2 KB file with compression 0xff0000ff and 6913x1820 pixels decoded as zero padding (1.2 s
  // under ASan; found by tests/fuzz/fuzz_image).
  const int32_t compression = static_cast<int32_t>(u32(30));
  const uint64_t bpp = u16(28);
  if (compression == 1 || compression == 2 || compression >= 4) return true;
  const int64_t w = static_cast<int32_t>(u32(18)), h = static_cast<int32_t>(u32(22));
  const uint64_t stride = (static_cast<uint64_t>(w < 0 ? -w : w) * bpp + 31) / 32 * 4;
  return b.size() >= offset + stride * static_cast<uint64_t>(h < 0 ? -h : h);
}

// GIF: header, colour tables and extension blocks up to the end of the first frame's image data.
bool gif_complete(const Bytes& b) {
  size_t p = 13;
  if (b.size() < p) return false;
  if (b[10] & 0x80) p += 3u << ((b[10] & 7) + 1);
  auto skip_sub_blocks = [&]() {
    while (p < b.size() && b[p] != 0) p += 1 + b[p];
    if (p >= b.size()) return false;
    ++p;
    return true;
  };
  while (p < b.size()) {
    const uint8_t block = b[p++];
    if (block == 0x21) {  // extension: label, sub-blocks
      if (++p > b.size() || !skip_sub_blocks()) return false;
    } else if (block == 0x2c) {  // image descriptor, local colour table, LZW code size, sub-blocks
      if (p + 9 > b.size()) return false;
      const uint8_t packed = b[p + 8];
      p += 9;
      if (packed & 0x80) p += 3u << ((packed & 7) + 1);
      return ++p <= b.size() && skip_sub_blocks();
    } else {
      return true;  // trailer or garbage before any image: stb refuses it with its own reason
    }
  }
  return false;
}

// A binary PNM header after "P5" / "P6": width, height and maxval, tokenised as stb_image does
// (whitespace and '#' comments between the numbers). stb_image 2.27 reads each into an int with no
// overflow check (undefined behaviour; found by tests/fuzz/fuzz_image), and reads a number that does
// not start with a digit ("-5") as 0, so a file is refused on either before stb reads it.
struct PnmHeader {
  uint64_t value[3] = {0, 0, 0};  // saturated at 2^40
  bool overflow = false;          // a number past INT_MAX
  bool not_a_number = false;      // a number that does not start with a digit, or is missing
  size_t end = 2;                 // just past maxval
};

PnmHeader read_pnm_header(const Bytes& b) {
  PnmHeader h;
  size_t p = 2;
  for (uint64_t& v : h.value) {
    for (;;) {
      while (p < b.size() && std::strchr(" \t\n\v\f\r", b[p]) && b[p]) ++p;
      if (p >= b.size() || b[p] != '#') break;
      while (p < b.size() && b[p] != '\n' && b[p] != '\r') ++p;
    }
    if (p >= b.size() || b[p] < '0' || b[p] > '9') h.not_a_number = true;
    for (; p < b.size() && b[p] >= '0' && b[p] <= '9'; ++p) {
      v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(b[p] - '0'), uint64_t{1} << 40);
      if (v > 0x7fffffff) h.overflow = true;
    }
  }
  h.end = p;
  return h;
}

// Binary PNM: the header, one whitespace, then width * height * channels samples of 1 or 2 bytes.
bool pnm_complete(const Bytes& b, int w, int h, int channels) {
  const PnmHeader header = read_pnm_header(b);
  const size_t p = header.end + 1;  // the single whitespace after maxval
  const uint64_t sample = header.value[2] > 255 ? 2 : 1;
  return b.size() >= p && b.size() - p >= static_cast<uint64_t>(w) * static_cast<uint64_t>(h) * static_cast<uint64_t>(channels) * sample;
}

Bytes read_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, not an image");
  // A device never ends (/dev/zero, /dev/urandom): refused, not read until memory runs out.
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) throw InputError(path + ": is a device, not an image");
  if (S_ISREG(st.st_mode) && st.st_size == 0) throw InputError(path + ": empty file (0 bytes), not an image");
  if (st.st_size > 0x7fffffff) throw InputError(path + ": file is over 2 GiB, too large for an image convnet reads");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw InputError(path + ": cannot open: " + std::strerror(errno));
  Bytes bytes;
  uint8_t buf[1 << 16];
  for (size_t n; bytes.size() <= 0x7fffffff && (n = std::fread(buf, 1, sizeof buf, f.get())) > 0;)
    bytes.insert(bytes.end(), buf, buf + n);  // a pipe has no size: stop past the 2 GiB refused below
  if (std::ferror(f.get())) throw InputError(path + ": cannot read: " + std::strerror(errno));
  if (bytes.empty()) throw InputError(path + ": empty file (0 bytes), not an image");
  if (bytes.size() > 0x7fffffff) throw InputError(path + ": file is over 2 GiB, too large for an image convnet reads");
  return bytes;
}

// stb refuses a 0-pixel side inside its header check, where the reason is lost (below); PNG, GIF
// and BMP keep their sides at fixed offsets, so they are looked at first.
bool header_has_zero_side(const std::string& format, const Bytes& b) {
  auto le = [&](size_t at, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | b[at + static_cast<size_t>(i)];
    return v;
  };
  if (format == "PNG" && b.size() >= 24 && starts_with(b, 12, "IHDR", 4))
    return (le(16, 4) == 0) || (le(20, 4) == 0);  // any byte order: only zero matters
  if (format == "GIF" && b.size() >= 10) return le(6, 2) == 0 || le(8, 2) == 0;
  if (format == "BMP" && b.size() >= 26 && le(14, 4) >= 40) return le(18, 4) == 0 || le(22, 4) == 0;
  return false;
}

std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown reason";
}

// PNG: every chunk up to IEND fits in the file (length, type, data, CRC). stb reallocates its IDAT
// buffer to the declared length before reading the data: a 188-byte PNG declaring a 2 GB IDAT made
// it allocate 2 GB.
bool png_complete(const Bytes& b) {
  size_t p = 8;  // after the signature
  while (b.size() - p >= 12) {
    const uint64_t len = uint64_t(b[p]) << 24 | uint64_t(b[p + 1]) << 16 | uint64_t(b[p + 2]) << 8 | b[p + 3];
    if (len > b.size() - p - 12) return false;
    if (starts_with(b, p + 4, "IEND", 4)) return true;
    p += 12 + static_cast<size_t>(len);
  }
  return false;
}

bool complete(const std::string& format, const Bytes& b, int w, int h, int channels) {
  if (format == "JPEG") return jpeg_complete(b);
  if (format == "BMP") return bmp_complete(b);
  if (format == "GIF") return gif_complete(b);
  if (format == "PNM") return pnm_complete(b, w, h, channels);
  return true;
}

}  // namespace

Image load_image_gray(const std::string& path) {
  const Bytes bytes = read_file(path);
  bool supported = false;
  const std::string format = sniff_format(bytes, &supported);
  const char* const kFormats = "PNG, JPEG, BMP, binary PGM/PPM or GIF";
  if (!supported && !format.empty())
    throw InputError(path + ": unsupported image format " + format + " (convnet reads " + kFormats + ")");
  if (format.empty()) throw InputError(path + ": not an image (convnet reads " + kFormats + ")");
  const int size = static_cast<int>(bytes.size());  // <= 2 GiB, checked by read_file
  int w = 0, h = 0, channels = 0;
  if (header_has_zero_side(format, bytes))
    throw InputError(path + ": zero-size image (a side of 0 pixels in the " + format + " header)");
  // Before stb parses any table: stbi_info already reads the DHT segments in front of the frame.
  if (format == "JPEG" && jpeg_huffman_overflow(bytes))
    throw InputError(path + ": corrupt JPEG (a Huffman table declares more than 256 codes)");
  if (format == "JPEG" && jpeg_undefined_huffman_table(bytes))
    throw InputError(path + ": corrupt JPEG (a scan uses a Huffman table that no DHT segment defines)");
  if (format == "PNM") {
    const PnmHeader header = read_pnm_header(bytes);
    if (header.overflow) throw InputError(path + ": corrupt PNM (a header number is larger than 2147483647)");
    if (header.not_a_number)
      throw InputError(path + ": corrupt PNM (the header's width, height and maxval must be decimal numbers)");
  }
  // The signature and the logical screen descriptor; stb reads a shorter file as 0x0.
  if (format == "GIF" && bytes.size() < 13) throw InputError(path + ": truncated GIF (shorter than its 13-byte header)");
  // stbi_info tries every format in turn, so its failure reason is always "unknown image type".
  if (!stbi_info_from_memory(bytes.data(), size, &w, &h, &channels))
    throw InputError(path + ": corrupt or truncated " + format + " (its header cannot be read)");
  const std::string dims = std::to_string(w) + "x" + std::to_string(h);
  if (w <= 0 || h <= 0) throw InputError(path + ": zero-size image (" + dims + ")");
  if (w > kMaxImageSide || h > kMaxImageSide)
    throw InputError(path + ": image is " + dims + " pixels, larger than the limit of " +
                     std::to_string(kMaxImageSide) + " per side");
  if (static_cast<int64_t>(w) * h > kMaxImagePixels)
    throw InputError(path + ": image is " + dims + " = " + std::to_string(static_cast<int64_t>(w) * h) +
                     " pixels, more than the limit of " + std::to_string(kMaxImagePixels) + " (scale it down)");
  // After the size checks (a header-only PNG is refused for its size), before stb allocates.
  if (format == "PNG" && !png_complete(bytes))
    throw InputError(path + ": corrupt or truncated PNG (a chunk runs past the end of the file, or no IEND)");
  if (!complete(format, bytes, w, h, channels)) throw InputError(path + ": truncated " + format + " (" + dims + ")");
  int dw = 0, dh = 0, dc = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(bytes.data(), size, &dw, &dh, &dc, 0),
                                               &stbi_image_free);
  if (!px) throw InputError(path + ": corrupt or truncated " + format + " (stb: " + stb_reason() + ")");
  CONVNET_CHECK(dw == w && dh == h && dc >= 1 && dc <= 4, "stb decoded other dimensions than stbi_info gave");
  return to_gray(px.get(), w, h, dc);
}

void write_png(const std::string& path, const Image& image) {
  CONVNET_CHECK(image.channels == 1 || image.channels == 3, "write_png: channels must be 1 or 3");
  CONVNET_CHECK(image.width > 0 && image.height > 0 &&
                    image.pixels.size() == static_cast<size_t>(image.width) * image.height * image.channels,
                "write_png: pixel count does not match the size");
  Bytes png;
  auto append = [](void* ctx, void* data, int n) {
    auto* out = static_cast<Bytes*>(ctx);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
  };
  if (!stbi_write_png_to_func(append, &png, image.width, image.height, image.channels, image.pixels.data(),
                              image.width * image.channels))
    throw InputError(path + ": cannot encode PNG");
  // Through a symbolic link to the file it names; never over a device or FIFO (output_file.h).
  const std::string target = output_target(path);
  if (const std::string problem = special_file_problem(target); !problem.empty())
    throw InputError(path + ": cannot write: " + target + " " + problem);
  const std::string tmp = target + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw InputError(path + ": cannot write: " + std::strerror(errno));
  std::string error;
  if (std::fwrite(png.data(), 1, png.size(), f) != png.size()) error = std::strerror(errno);
  if (std::fclose(f) != 0 && error.empty()) error = std::strerror(errno);
  if (error.empty() && std::rename(tmp.c_str(), target.c_str()) != 0) error = std::strerror(errno);
  if (!error.empty()) {
    std::remove(tmp.c_str());
    throw InputError(path + ": cannot write: " + error);
  }
}

}  // namespace convnet
