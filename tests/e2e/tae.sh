# The temporal autoencoder trains from its recipe (with the outlier penalty and the adversarial
# loss switched on after a warm-up step), resumes exactly (the discriminator included), trains
# data-parallel on 2 ranks as one process does, stops on SIGUSR1 with a checkpoint and exit 75,
# and `reel eval tae` scores a checkpoint and writes side-by-side MP4s. Bad TAE options are refused.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/tae.yaml
ARGS=(data.dir="$WORK/data" "model.tae.channels=[16,16,16]" model.tae.norm_groups=8 model.tae.latent_channels=4
      data.batch_size=4 data.workers=1 trainer.steps=6 trainer.ckpt_every=3 trainer.log_every=1 trainer.val_every=3
      trainer.val_samples=2 trainer.warmup_steps=2 trainer.threads=1 tae_loss.outlier=1 tae_loss.adversarial=0.1
      tae_loss.adversarial_start=2)
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/straight" > "$WORK/straight.log" 2>&1 || die "$(cat "$WORK/straight.log")"
grep -q "model tae: [0-9]* parameters (formula [0-9]*), compression 4x4x4, 4 latent channels" "$WORK/straight.log" ||
  die "no parameter line: $(cat "$WORK/straight.log")"
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/resumed" trainer.steps=3 > "$WORK/part1.log" 2>&1 || die "$(cat "$WORK/part1.log")"
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/resumed" --resume > "$WORK/part2.log" 2>&1 || die "$(cat "$WORK/part2.log")"
grep -q "resumed from .*step_00000003.h5 at step 3" "$WORK/part2.log" || die "no resume: $(cat "$WORK/part2.log")"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
def recs(run):
    return {r["step"]: r for r in map(json.loads, open(f"{w}/{run}/metrics.jsonl"))}
a, b = recs("straight"), recs("resumed")
assert sorted(a) == [1, 2, 3, 4, 5, 6], sorted(a)
for k in ("loss", "l1", "gradient", "kl", "outlier", "psnr", "lr", "grad_norm"):
    assert all(k in r for r in a.values()), f"a record lacks {k}"
assert "adversarial" not in a[2] and "adversarial" in a[3] and "disc_loss" in a[3], "the discriminator did not start at step 3"
assert "val_psnr" in a[3] and "val_ssim" in a[6], "no validation"
for s in a:
    assert a[s]["loss"] == b[s]["loss"], f"step {s}: {a[s]['loss']} straight, {b[s]['loss']} resumed"
PY
for group in /model /optim /disc /disc_optim; do
  h5diff "$WORK/straight/checkpoints/step_00000006.h5" "$WORK/resumed/checkpoints/step_00000006.h5" $group $group ||
    die "$group differs after resume"
done

# eval tae: scores per bucket, images and videos apart, and one side-by-side MP4 per bucket.
"$REEL" eval tae --ckpt "$WORK/straight" --data "$WORK/data" --out "$WORK/eval" --videos 1 > "$WORK/eval.log" 2>&1 ||
  die "$(cat "$WORK/eval.log")"
python3 - "$WORK" <<'PY'
import json, os, sys
w = sys.argv[1]
e = json.load(open(f"{w}/eval/eval_tae.json"))
assert e["clips"] == 16 and set(e["buckets"]) == {"4x8x8", "1x8x8"}, e
assert e["images"]["clips"] == 8 and e["videos"]["clips"] == 8, e
assert 0 < e["psnr"] < 60 and -1 <= e["ssim"] <= 1, e
for f in e["side_by_side"]:
    assert os.path.getsize(f"{w}/eval/{f}") > 0, f
assert sorted(e["side_by_side"]) == ["1x8x8_0.mp4", "4x8x8_0.mp4"], e["side_by_side"]
PY

# 2 ranks, each 2 of the 4 clips of every step, take the one process's steps, as replicas
# (dp_replicate 2) and as FSDP (dp_shard 2, the default mesh: master weights, Adam state and
# gradients sharded): the same losses, gradient norm (of the averaged gradients) and discriminator
# loss (the discriminator on from the first step, so step 2 shows its averaged update) to 1e-4.
# Later steps drift apart slowly through float summation order (Adam magnifies it in near-zero
# gradients; weights after 3 steps differ by up to 2% in replicas and FSDP alike).
reel_on 1 train $R "${ARGS[@]}" run.dir="$WORK/one_adv" trainer.steps=2 tae_loss.adversarial_start=0 \
  > "$WORK/one_adv.log" 2>&1 || die "$(cat "$WORK/one_adv.log")"
reel_on 2 train $R "${ARGS[@]}" run.dir="$WORK/dp_adv" trainer.steps=2 tae_loss.adversarial_start=0 \
  parallel.dp_replicate=2 parallel.dp_shard=1 > "$WORK/dp_adv.log" 2>&1 || die "$(cat "$WORK/dp_adv.log")"
reel_on 2 train $R "${ARGS[@]}" run.dir="$WORK/fsdp_adv" trainer.steps=2 tae_loss.adversarial_start=0 \
  > "$WORK/fsdp_adv.log" 2>&1 || die "$(cat "$WORK/fsdp_adv.log")"
grep -q "2 data-parallel ranks" "$WORK/dp_adv.log" || die "not data-parallel: $(cat "$WORK/dp_adv.log")"
grep -q "FSDP over 2 ranks" "$WORK/fsdp_adv.log" || die "not FSDP: $(cat "$WORK/fsdp_adv.log")"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
recs = lambda run: {r["step"]: r for r in map(json.loads, open(f"{w}/{run}/metrics.jsonl"))}
a = recs("one_adv")
for run in ("dp_adv", "fsdp_adv"):
    b = recs(run)
    assert sorted(a) == sorted(b) == [1, 2], (run, sorted(a), sorted(b))
    for s in a:
        for k in ("loss", "l1", "l2", "kl", "outlier", "psnr", "grad_norm", "adversarial", "disc_loss", "val_psnr"):
            assert (k in a[s]) == (k in b[s]), (run, s, k)
            if k in a[s]:
                assert abs(a[s][k] - b[s][k]) <= 1e-4 * max(1.0, abs(a[s][k])), f"{run} step {s} {k}: {a[s][k]} vs {b[s][k]}"
PY

# Preempted (SIGUSR1 after step 2, as Slurm sends it) under mpirun (FSDP 2, each rank writing its
# shards): a checkpoint, exit 75, and the resumed run ends exactly where an uninterrupted 2-rank
# run does. An FSDP checkpoint holds whole tensors: one process resumes from it.
reel_on 2 train $R "${ARGS[@]}" run.dir="$WORK/dp2" > "$WORK/dp2.log" 2>&1 || die "$(cat "$WORK/dp2.log")"
rc=0
REEL_TEST_PREEMPT_AT_STEP=2 reel_on 2 train $R "${ARGS[@]}" run.dir="$WORK/pre" > "$WORK/pre.log" 2>&1 || rc=$?
[ "$rc" = 75 ] || die "expected exit 75, got $rc: $(cat "$WORK/pre.log")"
[ -f "$WORK/pre/checkpoints/step_00000002.h5" ] || die "no checkpoint at the preemption"
reel_on 2 train $R "${ARGS[@]}" run.dir="$WORK/pre" --resume > "$WORK/pre2.log" 2>&1 || die "$(cat "$WORK/pre2.log")"
for group in /model /optim /disc /disc_optim; do
  h5diff "$WORK/dp2/checkpoints/step_00000006.h5" "$WORK/pre/checkpoints/step_00000006.h5" $group $group ||
    die "$group: the preempted and resumed run differs"
done
"$REEL" ckpt verify "$WORK/dp2/checkpoints/step_00000003.h5" > /dev/null || die "the FSDP checkpoint does not verify"
mkdir -p "$WORK/cross/checkpoints"
cp "$WORK/dp2/checkpoints/step_00000003.h5" "$WORK/cross/checkpoints/"
echo step_00000003.h5 > "$WORK/cross/checkpoints/latest"
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/cross" --resume > "$WORK/cross.log" 2>&1 || die "$(cat "$WORK/cross.log")"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
recs = lambda run: {r["step"]: r for r in map(json.loads, open(f"{w}/{run}/metrics.jsonl"))}
a, b = recs("dp2"), recs("cross")
assert sorted(b) == [4, 5, 6], sorted(b)
assert abs(a[4]["loss"] - b[4]["loss"]) <= 1e-4 * abs(a[4]["loss"]), (a[4]["loss"], b[4]["loss"])
PY

"$REEL" bench step $R "${ARGS[@]}" run.dir="$WORK/bench" --steps 2 --warmup 1 > "$WORK/bench.log" 2>&1 ||
  die "$(cat "$WORK/bench.log")"
grep -Eq "bench step .* \(tae\): 2 steps, [0-9.]+ ms/step, [0-9.]+ samples/s" "$WORK/bench.log" || die "$(cat "$WORK/bench.log")"

expect_exit 2 "model.tae.compression \(t\) = 3 must be a power of 2" -- \
  "$REEL" train $R "${ARGS[@]}" "model.tae.compression=[3,4,4]" run.dir="$WORK/bad"
echo "PASS"
