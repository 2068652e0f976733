# launch/reel-run restarts a crashed run from its newest complete checkpoint: a rank killed with
# SIGKILL during training (2 ranks) or in the middle of writing a checkpoint (1 process); the
# finished runs equal runs never killed (byte-identical weights, Adam state and EMA) and no file
# under a final name is ever partial. launch/slurm/train.sbatch parses and its dry run prints the
# srun command for 2 nodes x 8 GPUs. REEL_TEST_KILL_AT picks the moment (common/test_hooks.h).
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" trainer.steps=6 trainer.ckpt_every=2 trainer.keep_last=0
      trainer.ema_decay=0.9)
bash -n launch/reel-run || die "launch/reel-run does not parse"
bash -n launch/slurm/train.sbatch || die "launch/slurm/train.sbatch does not parse"

out=$(REEL_DRY_RUN=1 SLURM_JOB_NUM_NODES=2 SLURM_NTASKS_PER_NODE=8 SLURM_CPUS_PER_TASK=12 \
      bash launch/slurm/train.sbatch $R trainer.steps=5)
grep -q "^nodes 2 x 8 GPUs = 16 ranks" <<<"$out" || die "sbatch dry run: $out"
grep -q "^srun --mpi=pmix --nodes=2 --ntasks=16 --ntasks-per-node=8 --cpus-per-task=12 --gpus-per-node=8 .*/reel train $R trainer.steps=5 trainer.threads=12 --resume" <<<"$out" ||
  die "sbatch dry run command: $out"
out=$(launch/reel-run --reel "$REEL" -n 2 -t 1 --dry-run $R "${ARGS[@]}" run.dir="$WORK/x")
grep -q "^mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1 .*train $R .* run.dir=$WORK/x trainer.threads=1 --resume" <<<"$out" ||
  die "reel-run dry run: $out"
expect_exit 2 "model.dim" -- launch/reel-run --reel "$REEL" $R "${ARGS[@]}" model.dim=-1 run.dir="$WORK/bad"

# all_complete DIR: every step_*.h5 verifies; prints how many interrupted temporaries remain.
all_complete() {
  for f in "$1"/checkpoints/step_*.h5; do
    "$REEL" ckpt verify "$f" > /dev/null || die "$f is under a final name but does not verify"
  done
  ls "$1"/checkpoints | grep -c '\.tmp\.' || true
}
# same_as_straight NAME RANKS: NAME's step-6 checkpoint equals a run never killed.
same_as_straight() {
  train_as "${1}_straight" "$2"
  for group in /model /optim /ema; do
    h5diff "$WORK/${1}_straight/checkpoints/step_00000006.h5" "$WORK/$1/checkpoints/step_00000006.h5" $group $group ||
      die "$1: $group differs from the run never killed"
  done
}

# Rank 1 of 2 killed right after step 3: the restart resumes from step 2.
REEL_TEST_KILL_AT=step:3 REEL_TEST_KILL_RANK=1 REEL_TEST_KILL_ONCE="$WORK/killed_step" \
  launch/reel-run --reel "$REEL" -n 2 -t 1 $R "${ARGS[@]}" run.dir="$WORK/crash" > "$WORK/crash.log" 2>&1 ||
  die "reel-run did not recover from the killed rank: $(cat "$WORK/crash.log")"
[ -e "$WORK/killed_step" ] || die "the kill hook never fired"
log=$(cat "$WORK"/crash/logs/*/launcher.log)
grep -q "attempt 1 failed with exit" <<<"$log" || die "no failed first attempt: $log"
grep -q "attempt 2 finished the run" <<<"$log" || die "no finished second attempt: $log"
grep -q "resumed from .*step_00000002.h5 at step 2" "$WORK"/crash/logs/*/attempt_2.log || die "attempt 2 did not resume from step 2"
[ -s "$(ls "$WORK"/crash/logs/*/command.txt)" ] && [ -s "$(ls "$WORK"/crash/logs/*/env.txt)" ] || die "no command.txt / env.txt"
[ "$(all_complete "$WORK/crash")" = 0 ] || die "crash: temporaries left"
same_as_straight crash 2

# One process killed halfway through writing step 4's checkpoint: the temporary stays a
# temporary, `latest` still names step 2, and the restart resumes from it and deletes the
# temporary.
REEL_TEST_KILL_AT=write:4 REEL_TEST_KILL_ONCE="$WORK/killed_write" \
  launch/reel-run --reel "$REEL" -t 1 $R "${ARGS[@]}" run.dir="$WORK/write" > "$WORK/write.log" 2>&1 ||
  die "reel-run did not recover from the kill during a write: $(cat "$WORK/write.log")"
[ -e "$WORK/killed_write" ] || die "the write kill hook never fired"
grep -q "resumed from .*step_00000002.h5 at step 2" "$WORK"/write/logs/*/attempt_2.log || die "attempt 2 did not resume from step 2"
grep -q "removed .*step_00000004.h5.tmp.[0-9]*, the remains of an interrupted checkpoint write" \
  "$WORK"/write/logs/*/attempt_2.log || die "attempt 2 did not remove the interrupted step-4 temporary"
[ "$(all_complete "$WORK/write")" = 0 ] || die "write: temporaries left: $(ls "$WORK/write/checkpoints")"
same_as_straight write 1
echo "PASS"
