// FFmpeg plumbing shared by data/video_io.cpp (writing, whole-file decoding) and
// data/media.cpp (streaming decoding for ingest): owners that free FFmpeg objects on every
// path, error checks that throw reel::UserError with av_strerror's text, input opening and
// conversion of decoded frames to RGB.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
}

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace reel::data::detail {

// Sets FFmpeg's log level to errors only, once (x264 statistics and warnings stay quiet).
void quiet_ffmpeg();
std::string av_error_text(int err);
// Throws UserError "<what>: <av_strerror text>" when err < 0.
void av_try(int err, const std::string& what);

struct InputCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct OutputCloser {  // a muxer context and the file it opened
  void operator()(AVFormatContext* c) const {
    if (c->pb && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using InputPtr = std::unique_ptr<AVFormatContext, InputCloser>;
using OutputPtr = std::unique_ptr<AVFormatContext, OutputCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecCloser>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using SwsPtr = std::unique_ptr<SwsContext, SwsFreer>;

// An AVDictionary of options, freed on scope exit.
class AvDict {
 public:
  AvDict() = default;
  AvDict(const AvDict&) = delete;
  AvDict& operator=(const AvDict&) = delete;
  ~AvDict() { av_dict_free(&dict_); }
  void set(const char* key, const char* value);
  AVDictionary** get() { return &dict_; }

 private:
  AVDictionary* dict_ = nullptr;
};

FramePtr alloc_frame();
PacketPtr alloc_packet();
CodecPtr alloc_codec(const AVCodec* codec);
// A frame of the given format and size with its own (aligned, padded) buffers.
FramePtr alloc_image(AVPixelFormat format, int width, int height);

void copy_rgb_to_frame(const uint8_t* src, AVFrame* dst);  // packed (H, W, 3) rows -> frame
void copy_frame_to_rgb(const AVFrame* src, uint8_t* dst);  // frame -> packed (H, W, 3) rows

// Converts decoded frames of any pixel format to uint8 (H, W, 3) RGB of one fixed size,
// honouring the frame's colour matrix and range. width/height 0: the first converted frame's
// size. Scaling uses swscale's `filter` (SWS_BICUBIC, SWS_AREA, ...).
class RgbConverter {
 public:
  RgbConverter(int width = 0, int height = 0, int filter = SWS_BICUBIC)
      : width_(width), height_(height), filter_(filter) {}
  torch::Tensor convert(const AVFrame* f);

 private:
  int width_, height_, filter_;
  FramePtr staging_;
  SwsPtr sws_;
};

// Opens a decoder for a stream's parameters (params may be null); one decoding thread unless
// threads says otherwise (0 = FFmpeg chooses).
CodecPtr open_decoder(const AVCodec* codec, const AVCodecParameters* params, const std::string& path,
                      int threads = 1);
// Opens a media file and reads its stream information; UserError naming the path otherwise.
InputPtr open_input(const std::string& path);
// Index of the best video stream, and its decoder through `codec` when asked for; UserError if none.
int find_video_stream(AVFormatContext* in, const std::string& path, const AVCodec** codec = nullptr);

}  // namespace reel::data::detail
