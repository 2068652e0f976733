// Video and image files through the FFmpeg libraries: H.264 MP4 writing, decoding of anything
// FFmpeg reads, PNG, and contact sheets for looking at tiny clips.
//
// Tensors are uint8 RGB, channels last: clips (F, H, W, 3), images (H, W, 3). Every function
// is thread-safe (no shared state besides FFmpeg's log level, set once to AV_LOG_ERROR so the
// libraries print only real errors). Bad input (a wrong tensor, a missing, unwritable or
// corrupt file) throws reel::UserError naming the path or value, with FFmpeg's av_strerror
// text when FFmpeg reported it.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace reel::data {

// Writes frames as H.264 (libx264, yuv420p, CRF 18, BT.601 limited range, tagged as such) in
// an MP4 with the index at the front (+faststart), which browsers play.
//   frames: uint8 (F, H, W, 3) RGB, F >= 1 (a 1-frame clip is a valid video).
//   fps >= 1. scale >= 1: nearest-neighbour upscaling before encoding (tiny 16x16 clips are
//   viewed at 8x).
// H.264 4:2:0 needs even sizes: an odd scaled width/height is padded by one repeated edge
// column/row, so the file is ceil_even(W*scale) x ceil_even(H*scale).
// Written atomically (common/fs.h write_atomically): the file is complete or absent.
void write_mp4(const std::string& path, const torch::Tensor& frames, int fps, int scale = 1);

// Decodes every frame of the best video stream of any file FFmpeg reads (MP4, WebM, GIF,
// PNG, ...) into uint8 (F, H, W, 3) RGB, honouring the stream's colour matrix and range.
// Frames whose size differs from the first are rescaled to it. UserError naming the path for
// a missing, unreadable or corrupt file or one without a decodable video frame.
torch::Tensor read_video(const std::string& path);

struct VideoInfo {
  int frames = 0;     // number of frames (container count, else counted packets)
  int width = 0;      // coded picture size
  int height = 0;
  double fps = 0;     // average frame rate, 0 when unknown
  std::string codec;  // FFmpeg's codec name: "h264", "png", ...
};
// Reads the container header of the best video stream; no decoding. UserError as read_video.
VideoInfo probe_video(const std::string& path);

// Lossless PNG through FFmpeg's png encoder. image: uint8 (H, W, 3) RGB, any size. Atomic.
void write_png(const std::string& path, const torch::Tensor& image);
// Decodes a PNG (any pixel format: grey, RGBA, 16-bit are converted) to uint8 (H, W, 3) RGB.
torch::Tensor read_png(const std::string& path);

// A grid of frames for eyeballing clips: one row per clip, up to max_frames frames per row
// (evenly spaced, first and last included, when the clip is longer), each frame upscaled by
// `scale` (nearest neighbour), and `pad` white pixels between neighbouring cells and rows (none
// around the edge). Clips may differ in size and length: a row is as tall as its clip's
// frames, and rows narrower than the widest one are filled with white on the right.
//   clips: each uint8 (F, H, W, 3), or (H, W, 3) for a single image.
// Returns uint8 (H_sheet, W_sheet, 3) with
//   H_sheet = sum_i H_i*scale + (rows-1)*pad,
//   W_sheet = max_i (n_i*W_i*scale + (n_i-1)*pad), n_i = min(F_i, max_frames).
torch::Tensor contact_sheet(const std::vector<torch::Tensor>& clips, int max_frames = 8, int scale = 4,
                            int pad = 2);

}  // namespace reel::data
