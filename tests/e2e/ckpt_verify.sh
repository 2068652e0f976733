# One flipped byte in a checkpoint's tensor data is caught by `reel ckpt verify` (exit 1, naming
# the tensor) and by `reel train --resume`, which says so and resumes from the newest checkpoint
# that verifies; that run then reproduces the lost checkpoint exactly. `reel ckpt average` writes
# the mean of the model weights, which `reel sample` reads.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" trainer.steps=4 trainer.ckpt_every=2 trainer.keep_last=0)
train_as run 1
ckpts="$WORK/run/checkpoints"
cp "$ckpts/step_00000004.h5" "$WORK/original_step4.h5"
"$REEL" ckpt verify "$ckpts/step_00000002.h5" "$ckpts/step_00000004.h5" > "$WORK/verify_ok.log" ||
  die "verify failed on intact checkpoints: $(cat "$WORK/verify_ok.log")"
grep -q "step_00000004.h5: OK, step 4" "$WORK/verify_ok.log" || die "verify: no OK line"

# Flip one byte inside one tensor's data (its file offset from h5dump: contiguous storage).
tensor=/model/transformer.final.linear.weight
offset=$(h5dump -p -H -d "$tensor" "$ckpts/step_00000004.h5" | grep -o "OFFSET [0-9]*" | head -1 | cut -d' ' -f2)
[ -n "$offset" ] || die "no data address for $tensor"
python3 - "$ckpts/step_00000004.h5" "$offset" <<'PY'
import sys
path, at = sys.argv[1], int(sys.argv[2]) + 100
with open(path, "r+b") as f:
    f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0x01]))
PY
expect_exit 1 "step_00000004.h5: FAILED: .*final.linear.weight' fails its checksum" -- "$REEL" ckpt verify "$ckpts/step_00000004.h5"
"$REEL" train $R "${ARGS[@]}" trainer.steps=4 run.dir="$WORK/run" --resume > "$WORK/resume.log" 2>&1 ||
  die "resume past the corrupt checkpoint failed: $(cat "$WORK/resume.log")"
grep -q "step_00000004.h5.*checksum" "$WORK/resume.log" || die "resume did not name the corrupt checkpoint: $(cat "$WORK/resume.log")"
grep -q "resumed from .*step_00000002.h5 at step 2" "$WORK/resume.log" || die "resume did not fall back to step 2"
"$REEL" ckpt verify "$ckpts/step_00000004.h5" > /dev/null || die "the rewritten step 4 does not verify"
h5diff "$WORK/original_step4.h5" "$ckpts/step_00000004.h5" /model /model || die "the rewritten step 4 differs"

# Averaging: the mean of steps 2 and 4, sampled.
"$REEL" ckpt average "$ckpts/step_00000002.h5" "$ckpts/step_00000004.h5" -o "$WORK/avg.h5" > /dev/null ||
  die "ckpt average failed"
python3 - "$WORK" <<'PY' || die "the average is not the mean"
import subprocess, sys
w = sys.argv[1]
def values(path):
    out = subprocess.run(["h5dump", "-d", "/model/transformer.final.linear.bias", "-y", "-w", "0", path],
                         capture_output=True, text=True, check=True).stdout
    body = out.split("DATA {")[1].split("}")[0]
    return [float(v) for v in body.replace(",", " ").split()]
a, b, m = values(f"{w}/run/checkpoints/step_00000002.h5"), values(f"{w}/run/checkpoints/step_00000004.h5"), values(f"{w}/avg.h5")
assert len(m) == len(a) > 0
assert all(abs(x - (p + q) / 2) <= 1e-6 * max(1.0, abs(x)) for x, p, q in zip(m, a, b)), (a[:3], b[:3], m[:3])
PY
"$REEL" sample --ckpt "$WORK/avg.h5" --prompt "a red circle moves left" --steps 2 --out "$WORK/avg_samples" \
  > "$WORK/sample.log" 2>&1 || die "sampling the average failed: $(cat "$WORK/sample.log")"
[ -s "$WORK/avg_samples/000.mp4" ] || die "no MP4 from the average"
echo "PASS"
