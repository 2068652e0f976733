# `reel sample` writes playable H.264 MP4s, a contact sheet and samples.jsonl; `reel eval`
# writes eval.json with accuracies, validation losses and per-prompt results.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
"$REEL" train recipes/tiny/t2v.yaml "${TINY[@]}" data.dir="$WORK/data" trainer.steps=4 \
  trainer.ema_decay=0.5 run.dir="$WORK/run" > "$WORK/train.log"
ckpt="$WORK/run/checkpoints/$(cat "$WORK/run/checkpoints/latest")"
printf 'a red circle moving left\n{"prompt": "a blue square staying still", "seed": 42}\n' > "$WORK/prompts.txt"
"$REEL" sample --ckpt "$ckpt" --prompts "$WORK/prompts.txt" --out "$WORK/samples" --steps 4 --seed 7 > "$WORK/sample.log"
for f in 000.mp4 001.mp4 contact_sheet.png samples.jsonl; do
  [ -s "$WORK/samples/$f" ] || die "sample did not write $f"
done
codec=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 "$WORK/samples/000.mp4")
[ "$codec" = "h264" ] || die "000.mp4 codec is '$codec', not h264"
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$WORK/samples/000.mp4")
[ "$frames" = "4" ] || die "000.mp4 has $frames frames, expected 4"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
rows = [json.loads(l) for l in open(f"{w}/samples/samples.jsonl")]
assert [r["file"] for r in rows] == ["000.mp4", "001.mp4"], rows
assert rows[0]["seed"] == 7 and rows[1]["seed"] == 42, rows
assert rows[1]["prompt"] == "a blue square staying still"
PY
# The same prompt and seed give the same video.
"$REEL" sample --ckpt "$ckpt" --prompt "a red circle moving left" --out "$WORK/again" --steps 4 --seed 7 > /dev/null
cmp -s <(ffmpeg -v error -i "$WORK/samples/000.mp4" -f rawvideo -) <(ffmpeg -v error -i "$WORK/again/000.mp4" -f rawvideo -) \
  || die "sampling is not deterministic for a fixed seed"

"$REEL" eval --ckpt "$ckpt" --out "$WORK/eval" > "$WORK/eval.log"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
e = json.load(open(f"{w}/eval/eval.json"))
for k in ("color_accuracy", "motion_accuracy", "shape_accuracy", "val_loss", "val_loss_t", "val_loss_uncond", "per_prompt"):
    assert k in e, f"eval.json lacks {k}"
assert len(e["per_prompt"]) == 8, len(e["per_prompt"])
assert 0 <= e["color_accuracy"] <= 1 and e["val_loss"] > 0
assert len(e["val_loss_t"]) == 8
PY
# The motion probe: centroids per frame for every motion word, RMS differences, JSON written;
# a t outside [0, 1) is refused with exit code 2.
"$REEL" eval probe --ckpt "$ckpt" --noises 4 --color blue --out "$WORK/probe.json" > "$WORK/probe.log"
grep -q "centroid of blue per frame" "$WORK/probe.log" || die "probe printed no centroid table"
python3 - "$WORK" <<'PY'
import json, math, sys
w = sys.argv[1]
r = json.load(open(f"{w}/probe.json"))
assert r["color"] == "blue" and r["shape"] == "circle" and r["noises"] == 4, r
frames = int(r["bucket"].split("x")[0])
assert sorted(r["motions"]) == ["down", "left", "right", "still", "up"], r["motions"].keys()
for name, m in r["motions"].items():
    assert len(m["x"]) == frames and len(m["y"]) == frames, (name, m)
    assert abs(m["dx"] - (m["x"][-1] - m["x"][0])) < 1e-4, (name, m)
for k in ("left_right", "left_up", "left_still", "up_down", "colour_swap"):
    assert math.isfinite(r["rms"][k]) and r["rms"][k] > 0, (k, r["rms"])
a = r["attention"]  # self-attention entropy: one row of heads per block, within [0, log(tokens)]
assert abs(a["uniform_entropy"] - math.log(a["tokens"])) < 1e-6, a
assert len(a["entropy"]) >= 1 and all(len(row) == len(a["entropy"][0]) >= 1 for row in a["entropy"]), a
assert all(0 <= e <= a["uniform_entropy"] + 1e-4 for row in a["entropy"] for e in row), a
PY
grep -q "self-attention entropy per block" "$WORK/probe.log" || die "probe printed no attention entropy"
set +e
"$REEL" eval probe --ckpt "$ckpt" --t 1 > /dev/null 2> "$WORK/probe_bad.err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "must lie in \[0, 1)" "$WORK/probe_bad.err" || die "probe --t 1: exit $rc, $(cat "$WORK/probe_bad.err")"
echo "PASS"
