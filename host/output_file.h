// The files a command writes (train --save/--checkpoint/--log, show --out, eval --confusion-png,
// predict --save-preprocessed): one place that says where a write lands and checks, before the long
// work starts, that it can land there without destroying anything.
//
// Model files, checkpoints and PNGs are written to PATH.tmp.<pid> and renamed over PATH, which
// replaces whatever PATH was. So:
//   - an existing PATH that is not a regular file (a device such as /dev/null, a FIFO, a socket) is
//     refused: renaming over it would turn /dev/null into a regular file or drop a FIFO's reader;
//   - a PATH that is a symbolic link is written THROUGH: the link is followed to its end (relative
//     targets from the link's folder; the last target need not exist yet) and the temporary file is
//     renamed over that target, so the link stays a link and the file it names gets the data, as a
//     plain `>` redirection would do. The target is then checked as PATH would be.
// The --log file is appended to, never renamed over, so a device or a FIFO with a reader is fine
// there; an existing non-empty file must look like a JSON-lines log, else appending would ruin it
// (a model file given by mistake).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace convnet {

// Where a write to `path` lands: `path`, or the end of the symbolic links it starts.
std::string output_target(const std::string& path);

// "" when `target` may be replaced by a write (absent, or a regular file), else what it is
// ("is a character device, not a regular file"). Writers call it to refuse at write time too.
std::string special_file_problem(const std::string& target);

// An output file given by --flag: its folder exists and accepts a new file (a temporary file is
// created and removed there: access(W_OK) says yes to root on a read-only filesystem), and the file is
// absent or a regular file. Throws UsageError "--flag: <path> ..." otherwise.
void check_output_file(const std::string& flag, const std::string& path);

// An output folder given by --flag (which exists): a new file can be created in it.
void check_output_folder(const std::string& flag, const std::string& dir);

// The --log file, which is appended to, not replaced: a new one is checked as check_output_file
// checks; an existing one must be open for appending (a device such as /dev/null, a terminal, or a
// FIFO with a reader is used as it is), and an existing non-empty regular file must start like a
// JSON-lines training log: '{' and text, no NUL or other control bytes in its first 4 KiB.
void check_log_file(const std::string& flag, const std::string& path);

// Output flags (name, path; empty paths skipped) that name the same file lose data: a UsageError
// naming both flags and the path. Paths compare after links and "..": canonically where they exist.
// `note` is appended to the message (say where a default came from).
void refuse_same_output(const std::vector<std::pair<std::string, std::string>>& outputs, const std::string& note = "");

// Whether two output paths name the same file, compared as refuse_same_output compares them.
bool same_output_file(const std::string& a, const std::string& b);

}  // namespace convnet
