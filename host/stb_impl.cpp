// The one translation unit that compiles stb_image and stb_image_write (Debian libstb-dev headers,
// include folder STB_INCLUDE_DIR from CMake). Everything else reaches them through image_io.h.
//
// Formats: PNG, JPEG, BMP, PNM (binary PGM/PPM) and GIF stay; HDR, PSD, PIC and TGA are compiled out.
// TGA matters most: it has no magic number, so stb recognises it by a loose header check and would
// "decode" some arbitrary files as noise instead of refusing them. image_io.cpp names the formats
// it refuses (PSD, TGA, WebP, ...) in its own message.
//
// Gotchas: stb's code is not -Wall -Wextra clean, so its warnings are silenced here, locally,
// rather than loosening the project's flags. STBI_MAX_DIMENSIONS stays at stb's default: the
// smaller kMaxImageSide is checked by image_io.cpp (stbi_info first) with a clearer message.
// Warnings seen from stb v2.27 under -Wall -Wextra: missing-field-initializers (g++ -O2); the rest
// are listed because other compilers and optimisation levels report them in stb's code.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_PSD
#define STBI_NO_PIC
#define STBI_NO_TGA
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
