// Streaming decoding of real media files for ingest: what a file holds (probe_media), its video
// frames one at a time, already scaled, with their timestamps (decode_video_frames), and its
// audio track as mono 16-bit PCM at a chosen rate (decode_audio). Any container and codec this
// FFmpeg reads: MP4, MKV, WebM, AVI, PNG, JPEG, WAV, FLAC, ...
//
// Thread-safe: each call owns its FFmpeg objects. Errors (missing, unreadable, truncated or
// corrupt files, no such stream) throw reel::UserError naming the path with FFmpeg's reason.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace reel::data {

struct MediaInfo {
  std::string container;    // FFmpeg's demuxer name: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "wav", ...
  bool has_video = false;   // a decodable picture stream (still images count)
  bool is_image = false;    // a still image: an image demuxer or codec, or a 1-frame stream
  int width = 0, height = 0;
  double fps = 0;           // average frame rate, 0 when unknown
  double video_seconds = 0; // duration of the video stream, 0 when unknown
  std::string video_codec;
  bool has_audio = false;
  int sample_rate = 0, channels = 0;
  double audio_seconds = 0;  // duration of the audio stream, 0 when unknown
  std::string audio_codec;
};
// Reads the container header and stream parameters; no decoding. UserError if FFmpeg cannot
// open the file or finds neither a video nor an audio stream.
MediaInfo probe_media(const std::string& path);

// Decodes the best video stream frame by frame. Each frame is converted to RGB and scaled to
// (height, width) (swscale's area filter when shrinking, bicubic when growing; the aspect ratio
// is the caller's business) and handed to on_frame with its presentation time in seconds from
// the stream's start; on_frame returns false to stop early. Returns the number of frames
// delivered. UserError if the stream cannot be decoded or yields no frame at all.
int decode_video_frames(const std::string& path, int width, int height,
                        const std::function<bool(double seconds, const torch::Tensor& rgb)>& on_frame);

// Decodes the best audio stream, mixed down to mono and resampled to `rate` Hz: int16 (S).
// UserError if there is no audio stream or it cannot be decoded.
torch::Tensor decode_audio(const std::string& path, int rate);

}  // namespace reel::data
