// FFmpeg-backed video and image I/O: H.264 MP4 writing, decoding, probing, PNG, contact sheets.
#include "data/video_io.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>

#include "common/error.h"
#include "common/fs.h"
#include "data/internal/ffmpeg.h"

namespace reel::data {
namespace {

using namespace detail;

constexpr int kMaxSide = 8192;  // largest encoded width/height we accept (after scaling)

// ---- tensor checks and pixel shuffling ----

// Returns t as a contiguous CPU uint8 (F, H, W, 3) clip or throws UserError naming `what`.
torch::Tensor checked_clip(const torch::Tensor& t, const std::string& what) {
  if (!t.defined()) fail(what, ": the frames tensor is undefined");
  if (t.scalar_type() != torch::kUInt8 || t.dim() != 4 || t.size(3) != 3 || t.size(0) < 1 || t.size(1) < 1 ||
      t.size(2) < 1) {
    fail(what, ": expected uint8 RGB frames (F, H, W, 3) with F, H, W >= 1, got ", t.scalar_type(), " ",
         t.sizes(), "; hint: a float clip in [0, 1] shaped (F, 3, H, W) becomes one with "
         "(x.clamp(0, 1) * 255).round().to(torch::kUInt8).permute({0, 2, 3, 1})");
  }
  return t.to(torch::kCPU).contiguous();
}

torch::Tensor checked_image(const torch::Tensor& t, const std::string& what) {
  if (!t.defined()) fail(what, ": the image tensor is undefined");
  if (t.dim() != 3) fail(what, ": expected a uint8 RGB image (H, W, 3), got ", t.scalar_type(), " ", t.sizes());
  return checked_clip(t.unsqueeze(0), what)[0];
}

// Nearest-neighbour upscaling of (F, H, W, 3) by an integer factor.
torch::Tensor upscale(const torch::Tensor& clip, int scale) {
  if (scale == 1) return clip;
  return clip.repeat_interleave(scale, 1).repeat_interleave(scale, 2).contiguous();
}

// (F, H, W, 3) -> (F, ceil_even(H), ceil_even(W), 3) by repeating the last row / column.
torch::Tensor pad_to_even(torch::Tensor clip) {
  if (clip.size(1) % 2) clip = torch::cat({clip, clip.narrow(1, clip.size(1) - 1, 1)}, 1);
  if (clip.size(2) % 2) clip = torch::cat({clip, clip.narrow(2, clip.size(2) - 1, 1)}, 2);
  return clip.contiguous();
}

// Copies packed RGB24 rows (H, W, 3) into / out of a frame whose rows are linesize apart.
// Receives every frame the decoder has ready and appends it, as RGB, to `out`.
void receive_frames(AVCodecContext* dec, AVFrame* frame, RgbConverter& rgb, std::vector<torch::Tensor>& out,
                    const std::string& path) {
  for (;;) {
    const int r = avcodec_receive_frame(dec, frame);
    if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
    av_try(r, cat("cannot decode '", path, "' (corrupt file?)"));
    out.push_back(rgb.convert(frame));
    av_frame_unref(frame);
  }
}

// ---- encoding ----

// Sends one frame (nullptr: flush) to the encoder and muxes every packet it returns.
void encode_and_mux(AVCodecContext* enc, const AVFrame* frame, AVFormatContext* out, AVStream* st, AVPacket* pkt) {
  av_try(avcodec_send_frame(enc, frame), "the H.264 encoder rejected a frame");
  for (;;) {
    const int r = avcodec_receive_packet(enc, pkt);
    if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
    av_try(r, "H.264 encoding failed");
    av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
    pkt->stream_index = st->index;
    av_try(av_interleaved_write_frame(out, pkt), "cannot write a video packet");  // always consumes pkt
  }
}

// Encodes rgb uint8 (F, H, W, 3), H and W even, to an H.264 MP4 at `file`.
void encode_mp4(const std::string& file, const torch::Tensor& rgb, int fps) {
  const int n = static_cast<int>(rgb.size(0)), h = static_cast<int>(rgb.size(1)), w = static_cast<int>(rgb.size(2));
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) fail("this FFmpeg has no libx264 encoder; install one built with libx264 (Debian's libavcodec59 is)");

  AVFormatContext* raw = nullptr;
  // The format is named: the temporary file name ("x.mp4.tmp.123") does not end in .mp4.
  av_try(avformat_alloc_output_context2(&raw, nullptr, "mp4", file.c_str()), "cannot set up the MP4 muxer");
  OutputPtr out(raw);
  AVStream* st = avformat_new_stream(out.get(), nullptr);
  REEL_CHECK(st != nullptr, "avformat_new_stream failed (out of memory)");

  CodecPtr enc = alloc_codec(codec);
  enc->width = w;
  enc->height = h;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = AVRational{1, fps};
  enc->framerate = AVRational{fps, 1};
  // BT.709 limited range, tagged in the stream so players convert back with the same matrix.
  enc->color_range = AVCOL_RANGE_MPEG;
  enc->colorspace = AVCOL_SPC_BT709;
  enc->color_primaries = AVCOL_PRI_BT709;
  enc->color_trc = AVCOL_TRC_BT709;
  if (out->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AvDict x264;
  x264.set("crf", "18");
  x264.set("preset", "medium");
  av_try(avcodec_open2(enc.get(), codec, x264.get()), cat("cannot open libx264 for ", w, "x", h, " at ", fps, " fps"));
  av_try(avcodec_parameters_from_context(st->codecpar, enc.get()), "cannot copy the encoder parameters");
  st->time_base = enc->time_base;
  st->avg_frame_rate = enc->framerate;

  av_try(avio_open(&out->pb, file.c_str(), AVIO_FLAG_WRITE), cat("cannot open '", file, "' for writing"));
  AvDict mux;
  mux.set("movflags", "+faststart");
  av_try(avformat_write_header(out.get(), mux.get()), "cannot write the MP4 header");

  FramePtr yuv = alloc_image(AV_PIX_FMT_YUV420P, w, h);
  yuv->color_range = enc->color_range;
  yuv->colorspace = enc->colorspace;
  yuv->color_primaries = enc->color_primaries;
  yuv->color_trc = enc->color_trc;
  FramePtr staging = alloc_image(AV_PIX_FMT_RGB24, w, h);
  SwsPtr sws(sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUV420P, SWS_BICUBIC | SWS_ACCURATE_RND,
                            nullptr, nullptr, nullptr));
  REEL_CHECK(sws != nullptr, "sws_getContext failed for ", w, "x", h, " RGB24 -> YUV420P");
  const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
  sws_setColorspaceDetails(sws.get(), bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);  // full-range RGB -> limited YUV

  PacketPtr pkt = alloc_packet();
  const uint8_t* base = rgb.data_ptr<uint8_t>();
  for (int i = 0; i < n; ++i) {
    copy_rgb_to_frame(base + static_cast<int64_t>(i) * h * w * 3, staging.get());
    av_try(av_frame_make_writable(yuv.get()), "cannot reuse the YUV frame");
    sws_scale(sws.get(), staging->data, staging->linesize, 0, h, yuv->data, yuv->linesize);
    yuv->pts = i;
    encode_and_mux(enc.get(), yuv.get(), out.get(), st, pkt.get());
  }
  encode_and_mux(enc.get(), nullptr, out.get(), st, pkt.get());
  av_try(av_write_trailer(out.get()), "cannot finish the MP4 (disk full?)");
  av_try(avio_closep(&out->pb), cat("cannot close '", file, "' (disk full?)"));
}

// Encodes one RGB image (H, W, 3) as PNG bytes.
std::string encode_png(const torch::Tensor& image) {
  const int h = static_cast<int>(image.size(0)), w = static_cast<int>(image.size(1));
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
  if (!codec) fail("this FFmpeg has no png encoder");
  CodecPtr enc = alloc_codec(codec);
  enc->width = w;
  enc->height = h;
  enc->pix_fmt = AV_PIX_FMT_RGB24;
  enc->time_base = AVRational{1, 1};
  av_try(avcodec_open2(enc.get(), codec, nullptr), cat("cannot open the png encoder for ", w, "x", h));
  FramePtr frame = alloc_image(AV_PIX_FMT_RGB24, w, h);
  copy_rgb_to_frame(image.data_ptr<uint8_t>(), frame.get());
  frame->pts = 0;
  PacketPtr pkt = alloc_packet();
  std::string bytes;
  for (const AVFrame* f : {static_cast<const AVFrame*>(frame.get()), static_cast<const AVFrame*>(nullptr)}) {
    av_try(avcodec_send_frame(enc.get(), f), "the png encoder rejected the image");
    for (;;) {
      const int r = avcodec_receive_packet(enc.get(), pkt.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) break;
      av_try(r, "png encoding failed");
      bytes.append(reinterpret_cast<const char*>(pkt->data), pkt->size);
      av_packet_unref(pkt.get());
    }
  }
  REEL_CHECK(!bytes.empty(), "the png encoder produced no data for a ", w, "x", h, " image");
  return bytes;
}

}  // namespace

void write_mp4(const std::string& path, const torch::Tensor& frames, int fps, int scale) {
  quiet_ffmpeg();
  torch::Tensor clip = checked_clip(frames, cat("write_mp4 '", path, "'"));
  if (fps < 1) fail("write_mp4 '", path, "': fps must be >= 1, got ", fps);
  if (scale < 1) fail("write_mp4 '", path, "': scale must be >= 1, got ", scale);
  if (std::max(clip.size(1), clip.size(2)) * scale > kMaxSide) {
    fail("write_mp4 '", path, "': ", clip.size(2), "x", clip.size(1), " frames at scale ", scale, " exceed ",
         kMaxSide, " pixels; use a smaller scale");
  }
  clip = pad_to_even(upscale(clip, scale));  // (F, H', W', 3), H' and W' even
  try {
    write_atomically(path, [&](const std::string& tmp) { encode_mp4(tmp, clip, fps); });
  } catch (const UserError& e) {
    fail("cannot write video '", path, "': ", e.what());
  }
}

torch::Tensor read_video(const std::string& path) {
  InputPtr in = open_input(path);
  const AVCodec* codec = nullptr;
  const int idx = find_video_stream(in.get(), path, &codec);
  CodecPtr dec = open_decoder(codec, in->streams[idx]->codecpar, path);
  FramePtr frame = alloc_frame();
  PacketPtr pkt = alloc_packet();
  RgbConverter rgb;
  std::vector<torch::Tensor> frames;  // each (H, W, 3)
  int r = 0;
  while ((r = av_read_frame(in.get(), pkt.get())) >= 0) {
    if (pkt->stream_index == idx) {
      const int sent = avcodec_send_packet(dec.get(), pkt.get());
      av_packet_unref(pkt.get());
      av_try(sent, cat("cannot decode '", path, "' (corrupt file?)"));
      receive_frames(dec.get(), frame.get(), rgb, frames, path);
    } else {
      av_packet_unref(pkt.get());
    }
  }
  if (r != AVERROR_EOF) av_try(r, cat("cannot read '", path, "' (truncated or corrupt?)"));
  av_try(avcodec_send_packet(dec.get(), nullptr), cat("cannot flush the decoder of '", path, "'"));
  receive_frames(dec.get(), frame.get(), rgb, frames, path);
  if (frames.empty()) fail("no decodable video frame in '", path, "' (empty or corrupt file?)");
  return torch::stack(frames);  // (F, H, W, 3)
}

VideoInfo probe_video(const std::string& path) {
  InputPtr in = open_input(path);
  const int idx = find_video_stream(in.get(), path);
  const AVStream* st = in->streams[idx];
  VideoInfo info;
  info.width = st->codecpar->width;
  info.height = st->codecpar->height;
  info.codec = avcodec_get_name(st->codecpar->codec_id);
  const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  info.fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;
  if (st->nb_frames > 0) {
    info.frames = static_cast<int>(st->nb_frames);
  } else {  // the container keeps no count (raw streams, images): count the stream's packets
    PacketPtr pkt = alloc_packet();
    int r = 0;
    while ((r = av_read_frame(in.get(), pkt.get())) >= 0) {
      if (pkt->stream_index == idx) ++info.frames;
      av_packet_unref(pkt.get());
    }
    if (r != AVERROR_EOF) av_try(r, cat("cannot read '", path, "' (truncated or corrupt?)"));
  }
  return info;
}

void write_png(const std::string& path, const torch::Tensor& image) {
  quiet_ffmpeg();
  const torch::Tensor rgb = checked_image(image, cat("write_png '", path, "'"));
  const std::string bytes = encode_png(rgb);
  try {
    write_file_atomic(path, bytes);
  } catch (const UserError& e) {
    fail("cannot write image '", path, "': ", e.what());
  }
}

torch::Tensor read_png(const std::string& path) {
  quiet_ffmpeg();
  const std::string bytes = read_file(path);  // UserError naming the path when unreadable
  static constexpr char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (bytes.size() < 8 || bytes.compare(0, 8, kSignature, 8) != 0) {
    fail("'", path, "' is not a PNG file (no PNG signature)");
  }
  CodecPtr dec = open_decoder(avcodec_find_decoder(AV_CODEC_ID_PNG), nullptr, path);
  PacketPtr pkt = alloc_packet();
  av_try(av_new_packet(pkt.get(), static_cast<int>(bytes.size())), cat("cannot allocate a packet for '", path, "'"));
  std::memcpy(pkt->data, bytes.data(), bytes.size());
  FramePtr frame = alloc_frame();
  RgbConverter rgb;
  std::vector<torch::Tensor> frames;
  av_try(avcodec_send_packet(dec.get(), pkt.get()), cat("cannot decode the PNG '", path, "' (corrupt?)"));
  receive_frames(dec.get(), frame.get(), rgb, frames, path);
  av_try(avcodec_send_packet(dec.get(), nullptr), cat("cannot flush the PNG decoder for '", path, "'"));
  receive_frames(dec.get(), frame.get(), rgb, frames, path);
  if (frames.empty()) fail("no image decoded from '", path, "' (corrupt PNG?)");
  return frames.front();  // (H, W, 3)
}

torch::Tensor contact_sheet(const std::vector<torch::Tensor>& clips, int max_frames, int scale, int pad) {
  if (clips.empty()) fail("contact_sheet: no clips given");
  if (max_frames < 1 || scale < 1 || pad < 0) {
    fail("contact_sheet: need max_frames >= 1, scale >= 1, pad >= 0; got max_frames=", max_frames,
         " scale=", scale, " pad=", pad);
  }
  std::vector<torch::Tensor> rows;  // each (n, H*scale, W*scale, 3): the frames shown
  int64_t sheet_h = 0, sheet_w = 0;
  for (size_t i = 0; i < clips.size(); ++i) {
    const torch::Tensor& c = clips[i];
    torch::Tensor clip =
        checked_clip(c.defined() && c.dim() == 3 ? c.unsqueeze(0) : c, cat("contact_sheet clip ", i));
    const int64_t total = clip.size(0), n = std::min<int64_t>(total, max_frames);
    std::vector<int64_t> picks;  // evenly spaced, first and last included
    for (int64_t k = 0; k < n; ++k) {
      picks.push_back(n == 1 ? 0 : static_cast<int64_t>(std::llround(double(k) * (total - 1) / (n - 1))));
    }
    torch::Tensor row = upscale(clip.index_select(0, torch::tensor(picks, torch::kLong)), scale);
    sheet_h += row.size(1) + (i > 0 ? pad : 0);
    sheet_w = std::max(sheet_w, n * row.size(2) + (n - 1) * pad);
    rows.push_back(row);
  }
  torch::Tensor sheet = torch::full({sheet_h, sheet_w, 3}, 255, torch::kUInt8);  // (H_sheet, W_sheet, 3)
  int64_t y = 0;
  for (const torch::Tensor& row : rows) {
    const int64_t h = row.size(1), w = row.size(2);
    for (int64_t k = 0; k < row.size(0); ++k) sheet.narrow(0, y, h).narrow(1, k * (w + pad), w).copy_(row[k]);
    y += h + pad;
  }
  return sheet;
}

}  // namespace reel::data
