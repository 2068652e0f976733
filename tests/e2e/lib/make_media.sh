#!/usr/bin/env bash
# Writes a folder of real media files made with FFmpeg's test sources, for `reel data ingest`:
# 10 videos (MP4 and MKV; H.264, MPEG-4, FFV1; 6-30 fps; 1-5 s; 9 aspect ratios; 3 with audio),
# 8 images (PNG incl. RGBA, grey and odd sizes; a JPEG), 3 WAV files (8-48 kHz, mono/stereo),
# 2 corrupt files (a truncated MP4, random bytes named .mkv) and captions.jsonl for all but
# v10.mp4.   usage: make_media.sh DIR
set -euo pipefail
D=$1
mkdir -p "$D"
ff() { ffmpeg -v error -y -nostdin "$@"; }
src() { echo "testsrc2=size=$1:rate=$2:duration=$3"; }
ff -f lavfi -i "$(src 320x240 25 3.5)" -c:v libx264 -pix_fmt yuv420p "$D/v01.mp4"
ff -f lavfi -i "$(src 240x320 30 2)" -c:v libx264 -pix_fmt yuv420p "$D/v02.mp4"
ff -f lavfi -i "$(src 256x256 12 1.2)" -c:v libx264 -pix_fmt yuv420p "$D/v03.mp4"
ff -f lavfi -i "$(src 640x360 24 5)" -c:v libx264 -pix_fmt yuv420p "$D/v04.mp4"
ff -f lavfi -i "$(src 192x108 10 2.5)" -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=2.5" \
   -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$D/v05.mp4"
ff -f lavfi -i "$(src 200x200 15 3)" -c:v mpeg4 -q:v 3 "$D/v07.mkv"
ff -f lavfi -i "$(src 300x100 8 1)" -f lavfi -i "sine=frequency=880:sample_rate=22050:duration=1" \
   -c:v libx264 -pix_fmt yuv420p -c:a flac "$D/v08.mkv"
ff -f lavfi -i "$(src 100x300 20 2)" -c:v ffv1 "$D/v09.mkv"
ff -f lavfi -i "$(src 400x400 6 1.5)" -c:v mpeg4 -q:v 3 "$D/v10.mp4"
ff -f lavfi -i "$(src 160x120 16 2)" -f lavfi -i "sine=frequency=220:sample_rate=48000:duration=2" \
   -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$D/v11.mp4"
ff -f lavfi -i "testsrc2=size=64x64" -frames:v 1 "$D/i01.png"
ff -f lavfi -i "testsrc2=size=120x80" -frames:v 1 "$D/i02.png"
ff -f lavfi -i "testsrc2=size=80x120" -frames:v 1 "$D/i03.png"
ff -f lavfi -i "testsrc2=size=34x18" -frames:v 1 -vf crop=33:17 "$D/i04.png"
ff -f lavfi -i "testsrc2=size=500x100" -frames:v 1 "$D/i05.png"
ff -f lavfi -i "testsrc2=size=50x50" -frames:v 1 -pix_fmt rgba "$D/i06.png"
ff -f lavfi -i "testsrc2=size=90x60" -frames:v 1 -pix_fmt gray "$D/i07.png"
ff -f lavfi -i "testsrc2=size=160x90" -frames:v 1 "$D/i08.jpg"
ff -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=2.2" -ac 2 "$D/a01.wav"
ff -f lavfi -i "sine=frequency=300:sample_rate=8000:duration=1.5" "$D/a02.wav"
ff -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=3" "$D/a03.wav"
head -c 3000 "$D/v01.mp4" > "$D/broken.mp4"   # the index (moov) is at the end: cut off
head -c 5000 /dev/urandom > "$D/garbage.mkv"
{
  for f in v01 v02 v03 v04 v05 v11; do echo "{\"path\": \"$f.mp4\", \"caption\": \"test pattern $f\"}"; done
  for f in v07 v08 v09; do echo "{\"path\": \"$f.mkv\", \"caption\": \"test pattern $f\"}"; done
  for f in i01 i02 i03 i04 i05 i06 i07; do echo "{\"path\": \"$f.png\", \"caption\": \"still $f\"}"; done
  echo '{"path": "i08.jpg", "caption": "a jpeg still"}'
  for f in a01 a02 a03; do echo "{\"path\": \"$f.wav\", \"caption\": \"a tone $f\"}"; done
} > "$D/captions.jsonl"
