// FFmpeg plumbing shared by the video writer and the media decoders (data/internal/ffmpeg.h).
#include "data/internal/ffmpeg.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
}

#include <cstdarg>
#include <cstring>
#include <mutex>

#include "common/error.h"

namespace reel::data::detail {

// FFmpeg prints warnings and info lines (x264's statistics, "data is not aligned") by default;
// Reel reports errors itself, so only FFmpeg's errors stay. Set on first use, not at load time.
namespace {

thread_local std::string last_log;  // FFmpeg's last error message on this thread

// Keeps FFmpeg's error messages (e.g. "moov atom not found") for the UserError that follows
// instead of printing them; warnings and info lines are dropped.
void log_callback(void* avcl, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_ERROR) return;
  char line[512];
  int prefix = 0;  // no "[demuxer @ 0x...]" prefix: messages stay the same from run to run
  av_log_format_line2(avcl, level, fmt, args, line, sizeof(line), &prefix);
  std::string text = line;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (!text.empty()) last_log = text;
}

}  // namespace

void quiet_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(log_callback);
  });
  last_log.clear();
}

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  std::string text = av_strerror(err, buf, sizeof(buf)) < 0 ? cat("FFmpeg error ", err) : std::string(buf);
  if (!last_log.empty()) text += cat(" (", last_log, ")");
  last_log.clear();
  return text;
}

// Throws UserError "<what>: <av_strerror text>" when an FFmpeg call returned an error.
void av_try(int err, const std::string& what) {
  if (err < 0) fail(what, ": ", av_error_text(err));
}

FramePtr alloc_frame() {
  FramePtr f(av_frame_alloc());
  REEL_CHECK(f != nullptr, "av_frame_alloc failed (out of memory)");
  return f;
}
PacketPtr alloc_packet() {
  PacketPtr p(av_packet_alloc());
  REEL_CHECK(p != nullptr, "av_packet_alloc failed (out of memory)");
  return p;
}
CodecPtr alloc_codec(const AVCodec* codec) {
  CodecPtr c(avcodec_alloc_context3(codec));
  REEL_CHECK(c != nullptr, "avcodec_alloc_context3 failed (out of memory)");
  return c;
}

// A frame of the given format and size with its own (aligned, padded) buffers.
FramePtr alloc_image(AVPixelFormat format, int width, int height) {
  FramePtr f = alloc_frame();
  f->format = format;
  f->width = width;
  f->height = height;
  av_try(av_frame_get_buffer(f.get(), 0), cat("cannot allocate a ", width, "x", height, " frame"));
  return f;
}


void copy_rgb_to_frame(const uint8_t* src, AVFrame* dst) {
  const int row = dst->width * 3;
  for (int y = 0; y < dst->height; ++y) std::memcpy(dst->data[0] + y * dst->linesize[0], src + y * row, row);
}
void copy_frame_to_rgb(const AVFrame* src, uint8_t* dst) {
  const int row = src->width * 3;
  for (int y = 0; y < src->height; ++y) std::memcpy(dst + y * row, src->data[0] + y * src->linesize[0], row);
}

namespace {

// The swscale colour matrix for a stream's colour space tag (BT.601 when untagged).
int sws_colorspace(AVColorSpace space) {
  switch (space) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: return SWS_CS_ITU601;
  }
}

}  // namespace

torch::Tensor RgbConverter::convert(const AVFrame* f) {
  if (!staging_) {
    staging_ = alloc_image(AV_PIX_FMT_RGB24, width_ > 0 ? width_ : f->width, height_ > 0 ? height_ : f->height);
  }
  const auto format = static_cast<AVPixelFormat>(f->format);
  sws_.reset(sws_getCachedContext(sws_.release(), f->width, f->height, format, staging_->width, staging_->height,
                                  AV_PIX_FMT_RGB24,
                                  filter_ | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP, nullptr,
                                  nullptr, nullptr));
  if (!sws_) {
    const char* name = av_get_pix_fmt_name(format);
    fail("cannot convert ", f->width, "x", f->height, " ", name ? name : "unknown-format", " frames to ",
         staging_->width, "x", staging_->height, " RGB");
  }
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(format);
  if (desc && !(desc->flags & AV_PIX_FMT_FLAG_RGB) && desc->nb_components >= 3) {
    const bool full_range = f->color_range == AVCOL_RANGE_JPEG || format == AV_PIX_FMT_YUVJ420P ||
                            format == AV_PIX_FMT_YUVJ422P || format == AV_PIX_FMT_YUVJ444P;
    const int* table = sws_getCoefficients(sws_colorspace(f->colorspace));
    sws_setColorspaceDetails(sws_.get(), table, full_range ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                             1 << 16, 1 << 16);
  }
  av_try(av_frame_make_writable(staging_.get()), "cannot write the RGB staging frame");
  sws_scale(sws_.get(), f->data, f->linesize, 0, f->height, staging_->data, staging_->linesize);
  torch::Tensor out = torch::empty({staging_->height, staging_->width, 3}, torch::kUInt8);  // (H, W, 3)
  copy_frame_to_rgb(staging_.get(), out.data_ptr<uint8_t>());
  return out;
}

CodecPtr open_decoder(const AVCodec* codec, const AVCodecParameters* params, const std::string& path, int threads) {
  if (!codec) fail("no decoder in this FFmpeg for the stream in '", path, "'");
  CodecPtr dec = alloc_codec(codec);
  if (params) {
    av_try(avcodec_parameters_to_context(dec.get(), params), cat("cannot set up the decoder for '", path, "'"));
  }
  dec->thread_count = threads;
  av_try(avcodec_open2(dec.get(), codec, nullptr), cat("cannot open the ", codec->name, " decoder for '", path, "'"));
  return dec;
}

// Opens a media file and reads its stream information; UserError naming the path otherwise.
InputPtr open_input(const std::string& path) {
  quiet_ffmpeg();
  AVFormatContext* raw = nullptr;
  const int r = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);  // frees raw on failure
  if (r < 0) {
    fail("cannot open '", path, "': ", av_error_text(r),
         r == AVERROR(ENOENT) ? " (check the path)" : " (not a media file FFmpeg can read, or corrupt)");
  }
  InputPtr in(raw);
  av_try(avformat_find_stream_info(in.get(), nullptr), cat("cannot read the streams of '", path, "' (corrupt?)"));
  return in;
}

// Index of the best video stream, and its decoder through `codec` when asked for.
int find_video_stream(AVFormatContext* in, const std::string& path, const AVCodec** codec) {
  const int idx = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, codec, 0);
  if (idx < 0) fail("no video stream in '", path, "': ", av_error_text(idx));
  return idx;
}

void AvDict::set(const char* key, const char* value) { av_try(av_dict_set(&dict_, key, value, 0), cat("option ", key)); }

}  // namespace reel::data::detail
