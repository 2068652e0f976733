// Streaming media decoding for ingest (data/media.h): probing, frame-by-frame scaled video,
// mono PCM audio through libswresample.
#include "data/media.h"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "data/internal/ffmpeg.h"

namespace reel::data {
namespace {

using namespace detail;

struct SwrFreer {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
using SwrPtr = std::unique_ptr<SwrContext, SwrFreer>;

bool is_image_demuxer(const AVInputFormat* f) {
  if (!f || !f->name) return false;
  const std::string name = f->name;
  return name == "image2" || (name.size() > 5 && name.compare(name.size() - 5, 5, "_pipe") == 0);
}

// Seconds of a stream: its own duration, else the container's, else 0.
double stream_seconds(const AVFormatContext* in, const AVStream* st) {
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) return double(st->duration) * av_q2d(st->time_base);
  if (in->duration != AV_NOPTS_VALUE && in->duration > 0) return double(in->duration) / AV_TIME_BASE;
  return 0;
}

// Feeds every packet of stream `idx` to `dec` (and flushes it at the end), calling on_frame for
// each decoded frame until it returns false. A read error other than end-of-file is a UserError.
template <typename OnFrame>
void decode_stream(AVFormatContext* in, int idx, AVCodecContext* dec, const std::string& path, OnFrame on_frame) {
  FramePtr frame = alloc_frame();
  PacketPtr pkt = alloc_packet();
  bool go = true;
  auto drain = [&] {
    while (go) {
      const int r = avcodec_receive_frame(dec, frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      av_try(r, cat("cannot decode '", path, "' (corrupt file?)"));
      go = on_frame(frame.get());
      av_frame_unref(frame.get());
    }
  };
  int r = 0;
  while (go && (r = av_read_frame(in, pkt.get())) >= 0) {
    if (pkt->stream_index == idx) {
      const int sent = avcodec_send_packet(dec, pkt.get());
      av_packet_unref(pkt.get());
      av_try(sent, cat("cannot decode '", path, "' (corrupt file?)"));
      drain();
    } else {
      av_packet_unref(pkt.get());
    }
  }
  if (!go) return;
  if (r != AVERROR_EOF) av_try(r, cat("cannot read '", path, "' (truncated or corrupt?)"));
  av_try(avcodec_send_packet(dec, nullptr), cat("cannot flush the decoder of '", path, "'"));
  drain();
}

}  // namespace

MediaInfo probe_media(const std::string& path) {
  InputPtr in = open_input(path);
  MediaInfo info;
  info.container = in->iformat && in->iformat->name ? in->iformat->name : "";
  const int v = av_find_best_stream(in.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (v >= 0 && in->streams[v]->codecpar->width > 0 && in->streams[v]->codecpar->height > 0) {
    const AVStream* st = in->streams[v];
    info.has_video = true;
    info.width = st->codecpar->width;
    info.height = st->codecpar->height;
    info.video_codec = avcodec_get_name(st->codecpar->codec_id);
    const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    info.fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;
    info.video_seconds = stream_seconds(in.get(), st);
    info.is_image = is_image_demuxer(in->iformat) || st->nb_frames == 1 ||
                    (st->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0;
  }
  const int a = av_find_best_stream(in.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (a >= 0 && in->streams[a]->codecpar->sample_rate > 0) {
    const AVStream* st = in->streams[a];
    info.has_audio = true;
    info.sample_rate = st->codecpar->sample_rate;
    info.channels = st->codecpar->ch_layout.nb_channels;
    info.audio_seconds = stream_seconds(in.get(), st);
    info.audio_codec = avcodec_get_name(st->codecpar->codec_id);
  }
  if (!info.has_video && !info.has_audio) fail("'", path, "' holds neither a video nor an audio stream FFmpeg can use");
  return info;
}

int decode_video_frames(const std::string& path, int width, int height,
                        const std::function<bool(double, const torch::Tensor&)>& on_frame) {
  REEL_CHECK(width > 0 && height > 0, "decode_video_frames: bad size ", width, "x", height);
  InputPtr in = open_input(path);
  const AVCodec* codec = nullptr;
  const int idx = find_video_stream(in.get(), path, &codec);
  const AVStream* st = in->streams[idx];
  CodecPtr dec = open_decoder(codec, st->codecpar, path);
  const int src_w = st->codecpar->width, src_h = st->codecpar->height;
  RgbConverter rgb(width, height, (width < src_w || height < src_h) ? SWS_AREA : SWS_BICUBIC);
  const double tb = av_q2d(st->time_base);
  const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
  const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  const double fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;
  int count = 0;
  double last = -1;
  decode_stream(in.get(), idx, dec.get(), path, [&](AVFrame* f) {
    double t = f->best_effort_timestamp != AV_NOPTS_VALUE ? double(f->best_effort_timestamp - start) * tb
                                                          : (fps > 0 ? count / fps : double(count));
    if (t <= last) t = last + 1e-6;  // keep times increasing even for broken timestamps
    last = t;
    ++count;
    return on_frame(t, rgb.convert(f));
  });
  if (count == 0) fail("no decodable video frame in '", path, "' (empty or corrupt file?)");
  return count;
}

torch::Tensor decode_audio(const std::string& path, int rate) {
  if (rate < 1) fail("decode_audio '", path, "': rate must be >= 1 Hz, got ", rate);
  InputPtr in = open_input(path);
  const AVCodec* codec = nullptr;
  const int idx = av_find_best_stream(in.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
  if (idx < 0) fail("no audio stream in '", path, "': ", av_error_text(idx));
  CodecPtr dec = open_decoder(codec, in->streams[idx]->codecpar, path);
  AVChannelLayout in_layout;
  if (dec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || dec->ch_layout.nb_channels < 1) {
    av_channel_layout_default(&in_layout, std::max(1, dec->ch_layout.nb_channels));
  } else {
    av_try(av_channel_layout_copy(&in_layout, &dec->ch_layout), cat("cannot read the channel layout of '", path, "'"));
  }
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  SwrContext* raw = nullptr;
  const int made = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_S16, rate, &in_layout, dec->sample_fmt,
                                       dec->sample_rate, 0, nullptr);
  av_channel_layout_uninit(&in_layout);
  av_try(made, cat("cannot set up audio resampling for '", path, "'"));
  SwrPtr swr(raw);
  av_try(swr_init(swr.get()), cat("cannot start audio resampling for '", path, "' (", dec->sample_rate, " Hz, ",
                                  dec->ch_layout.nb_channels, " channels)"));
  std::vector<int16_t> samples;
  auto convert = [&](const uint8_t** data, int n) {
    const int room = swr_get_out_samples(swr.get(), n);
    if (room <= 0) return;
    const size_t at = samples.size();
    samples.resize(at + size_t(room));
    uint8_t* out = reinterpret_cast<uint8_t*>(samples.data() + at);
    const int got = swr_convert(swr.get(), &out, room, data, n);
    av_try(got, cat("cannot resample the audio of '", path, "'"));
    samples.resize(at + size_t(got));
  };
  decode_stream(in.get(), idx, dec.get(), path, [&](AVFrame* f) {
    convert(const_cast<const uint8_t**>(f->extended_data), f->nb_samples);
    return true;
  });
  convert(nullptr, 0);  // what the resampler still holds
  if (samples.empty()) fail("no decodable audio in '", path, "' (empty or corrupt file?)");
  return torch::from_blob(samples.data(), {int64_t(samples.size())}, torch::kInt16).clone();
}

}  // namespace reel::data
