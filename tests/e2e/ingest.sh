# `reel data ingest` on a folder of 23 real files made with FFmpeg's test sources (tests/e2e/lib/
# make_media.sh: MP4 and MKV videos of many sizes, rates and lengths, PNG/JPEG images, WAV audio,
# a truncated MP4 and a garbage MKV): every sample lands in the bucket its aspect ratio and
# length call for with the right frame count, the report names the 2 corrupt files, the exit
# code is 0, a run killed after its second commit resumes to the same dataset, and the TAE
# trains on the result.
source "$(dirname "$0")/lib/common.bash"
bash "$(dirname "$0")/lib/make_media.sh" "$WORK/media"
cat > "$WORK/grid.yaml" <<'EOF'
data:
  buckets:
    fps: 8
    heights: [16, 16, 24]
    widths: [16, 24, 16]
    frames: [8, 16]
EOF
"$REEL" data ingest "$WORK/media" --out "$WORK/ds" --recipe "$WORK/grid.yaml" --threads 2 --val-fraction 0.25 \
  > "$WORK/ingest.log" 2>&1 || die "ingest failed: $(cat "$WORK/ingest.log")"
grep -q "skipped 2 files" "$WORK/ingest.log" || die "no skip summary: $(cat "$WORK/ingest.log")"

# Shapes of every shard: "<split>/<file> <dataset> N F H W C" lines from h5ls.
shapes() {
  for f in "$1"/train/*.h5 "$1"/val/*.h5; do
    [ -e "$f" ] || continue
    echo "$(basename "$(dirname "$f")")/$(basename "$f") $(h5ls "$f/pixels" | sed -E 's/.*\{([^}]*)\}.*/\1/; s#/(Inf|[0-9]+)##g' | tr -d ',')"
  done
}
shapes "$WORK/ds" > "$WORK/shapes.txt"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
r = json.load(open(f"{w}/ds/ingest_report.json"))
# The expected cut of each file (make_media.sh): videos by nearest aspect ratio (16x16 1:1,
# 16x24 3:2, 24x16 2:3) and length (longest of 2 s / 1 s first, the rest dropped).
expected = {"16x16x24": 5,  # v01 (4:3, 3.5 s), v04 (16:9, 5 s) x2, v05 (2.5 s), v11 (4:3, 2 s)
            "8x16x24": 3,   # the 1 s remainders of v01 and v04, v08 (3:1, 1 s)
            "16x24x16": 2,  # v02 (3:4, 2 s), v09 (1:3, 2 s)
            "16x16x16": 1,  # v07 (1:1, 3 s: 2 s + 1 s)
            "8x16x16": 3,   # v07's remainder, v03 (1:1, 1.2 s), v10 (1:1, 6 fps, 1.5 s)
            "1x16x16": 2,   # i01 64x64, i06 50x50 RGBA
            "1x16x24": 5,   # i02 120x80, i04 33x17, i05 500x100, i07 90x60 grey, i08 160x90 JPEG
            "1x24x16": 1}   # i03 80x120
assert r["clips"] == expected, r["clips"]
assert r["audio_clips"] == {"32000": 2, "16000": 2}, r["audio_clips"]  # a01 2.2 s, a02 1.5 s, a03 3 s
assert (r["files"], r["ingested"], r["videos"], r["images"], r["audio_files"]) == (23, 21, 10, 8, 3), r
assert r["uncaptioned"] == 1, r["uncaptioned"]  # v10.mp4 has no caption line
skipped = sorted(s["file"].rsplit("/", 1)[1] for s in r["skipped"])
assert skipped == ["broken.mp4", "garbage.mkv"], skipped
assert all(s["file"] in s["reason"] for s in r["skipped"]), r["skipped"]  # the reason names the file
# Every shard holds its bucket's frame count and size, and they add up to the report.
total = {}
for line in open(f"{w}/shapes.txt"):
    name, n, f, h, wd, c = line.split()
    bucket = name.split("/")[1].rsplit("_", 1)[0]
    assert bucket == f"{f}x{h}x{wd}" and c == "3", line
    total[bucket] = total.get(bucket, 0) + int(n)
assert total == expected, total
d = json.load(open(f"{w}/ds/dataset.json"))
assert sum(sum(v.values()) for v in d["splits"].values()) == sum(expected.values()) + 4, d
assert "val" in d["splits"], d
PY
[ $? = 0 ] || die "wrong buckets or counts (shapes: $(cat "$WORK/shapes.txt"))"

# Killed right after its second commit, a rerun with the same arguments finishes the job: the
# same samples, none twice.
ARGS=("$WORK/media" --out "$WORK/killed" --recipe "$WORK/grid.yaml" --threads 1 --samples-per-shard 2
      --val-fraction 0.25)
rc=0
REEL_TEST_KILL_AT=ingest:2 "$REEL" data ingest "${ARGS[@]}" > "$WORK/killed.log" 2>&1 || rc=$?
[ "$rc" = 137 ] || die "the kill hook did not fire (exit $rc): $(cat "$WORK/killed.log")"
"$REEL" data ingest "${ARGS[@]}" > "$WORK/resumed.log" 2>&1 || die "resume failed: $(cat "$WORK/resumed.log")"
grep -q "resumed after [1-9][0-9]* files" "$WORK/resumed.log" || die "did not resume: $(cat "$WORK/resumed.log")"
shapes "$WORK/killed" > "$WORK/shapes_killed.txt"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
count = lambda f: sorted((l.split()[0].split("/")[0] + "/" + l.split()[0].split("/")[1].rsplit("_", 1)[0], int(l.split()[1]))
                         for l in open(f))
def per_bucket(f):
    t = {}
    for key, n in count(f):
        t[key] = t.get(key, 0) + n
    return t
a, b = per_bucket(f"{w}/shapes.txt"), per_bucket(f"{w}/shapes_killed.txt")
assert a == b, (a, b)
ra, rb = (json.load(open(f"{w}/{d}/ingest_report.json")) for d in ("ds", "killed"))
for k in ("clips", "audio_clips", "ingested", "uncaptioned"):
    assert ra[k] == rb[k], (k, ra[k], rb[k])
assert len(rb["skipped"]) == 2, rb["skipped"]
PY

# The TAE trains on the ingested real clips (every bucket, images included).
"$REEL" train recipes/tiny/tae.yaml data.dir="$WORK/ds" "model.tae.channels=[16,16,16]" model.tae.norm_groups=8 \
  model.tae.latent_channels=4 data.batch_size=2 data.workers=1 trainer.steps=2 trainer.val_every=2 \
  trainer.val_samples=1 trainer.warmup_steps=1 trainer.threads=1 run.dir="$WORK/tae" > "$WORK/tae.log" 2>&1 ||
  die "TAE training on ingested data failed: $(cat "$WORK/tae.log")"
grep -q "val PSNR" "$WORK/tae.log" || die "no validation on ingested data: $(cat "$WORK/tae.log")"

# The loader serves the ingested shards (bench data), mixing images in at a set ratio.
"$REEL" bench data recipes/tiny/tae.yaml data.dir="$WORK/ds" data.batch_size=1 data.workers=2 data.image_ratio=0.5 --batches 20 \
  > "$WORK/bench.log" 2>&1 || die "bench data failed: $(cat "$WORK/bench.log")"
grep -Eq "20 batches of 1, 2 workers.*[0-9]+ samples/s, [0-9.]+ MB/s" "$WORK/bench.log" || die "$(cat "$WORK/bench.log")"

# Bad input: no sources, a grid with unequal lists.
expect_exit 2 "--out DIR is required" -- "$REEL" data ingest "$WORK/media"
printf 'data:\n  buckets:\n    heights: [16]\n    widths: [16, 24]\n' > "$WORK/bad.yaml"
expect_exit 2 "data.buckets.widths' has 2 entries but data.buckets.heights has 1" -- \
  "$REEL" data ingest "$WORK/media" --out "$WORK/bad" --recipe "$WORK/bad.yaml"
echo "ingest OK"
