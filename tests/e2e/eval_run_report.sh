# `reel eval-run` and `reel report`: watching a run from before it starts, every checkpoint is
# evaluated once into eval.jsonl (a rerun evaluates nothing new); a prompt file with expected truth
# is scored, sampled over 2 ranks into the same files as one process, and a bad one refused naming
# its line; the HTML report holds the charts and the
# videos, and references only files that exist (embedded videos as data URIs, linked ones past the
# embedding budget relative to the page).
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
export OMP_NUM_THREADS=1
RUN="$WORK/run"
EVAL=(--prompts 4 --steps 4 --poll 0.5)

"$REEL" eval-run "$RUN" --watch --max-wait 300 "${EVAL[@]}" > "$WORK/watch.log" 2>&1 &
watcher=$!
"$REEL" train recipes/tiny/t2v.yaml "${TINY[@]}" data.dir="$WORK/data" trainer.steps=4 trainer.ckpt_every=2 \
  trainer.keep_last=0 run.dir="$RUN" > "$WORK/train.log" 2>&1 || die "$(tail -20 "$WORK/train.log")"
wait "$watcher" || die "eval-run --watch: $(tail -20 "$WORK/watch.log")"
grep -q "eval-run: 2 checkpoint(s) evaluated" "$WORK/watch.log" || die "$(tail -20 "$WORK/watch.log")"
python3 - "$RUN" <<'PY'
import json, os, sys
run = sys.argv[1]
recs = [json.loads(l) for l in open(f"{run}/eval.jsonl")]
assert [r["step"] for r in recs] == [2, 4], recs
for r in recs:
    for k in ("color_accuracy", "motion_accuracy", "shape_accuracy", "val_loss", "val_loss_t", "videos"):
        assert k in r, (k, r)
    assert len(r["videos"]) == 4 and all(os.path.exists(f"{run}/{v['file']}") for v in r["videos"]), r["videos"]
PY
"$REEL" eval-run "$RUN" "${EVAL[@]}" > "$WORK/again.log" 2>&1 || die "$(cat "$WORK/again.log")"
grep -q "eval-run: 0 checkpoint(s) evaluated" "$WORK/again.log" || die "a rerun evaluated again: $(cat "$WORK/again.log")"

# A prompt file with truth: every colour named is scored, shapes and motions not given are null.
printf '%s\n' '{"prompt": "a red circle moving left", "seed": 3, "color": "red"}' 'a plain prompt without truth' \
  '{"prompt": "a blue square", "color": "blue", "seed": 4}' > "$WORK/prompts.jsonl"
"$REEL" eval --ckpt "$RUN" --out "$WORK/pf" --prompts-file "$WORK/prompts.jsonl" --steps 4 > "$WORK/pf.log" 2>&1 ||
  die "$(cat "$WORK/pf.log")"
python3 - "$WORK/pf/eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["prompts"] == 3 and r["shape_accuracy"] is None and r["motion_accuracy"] is None, r
assert r["color_accuracy"] is not None and "color_ok" in r["per_prompt"][0] and "color_ok" not in r["per_prompt"][1]
PY
# The prompt file sharded over 2 ranks: the same videos, contact sheet and samples.jsonl as one process.
printf '%s\n' "a green triangle moving up" "a red circle moving left" >> "$WORK/prompts.jsonl"
"$REEL" sample --ckpt "$RUN" --prompts "$WORK/prompts.jsonl" --out "$WORK/one" --steps 4 > "$WORK/one.log" 2>&1 ||
  die "$(cat "$WORK/one.log")"
reel_on 2 sample --ckpt "$RUN" --prompts "$WORK/prompts.jsonl" --out "$WORK/two" --steps 4 > "$WORK/two.log" 2>&1 ||
  die "$(cat "$WORK/two.log")"
grep -q "wrote 5 video(s) from 2 ranks" "$WORK/two.log" || die "$(cat "$WORK/two.log")"
for f in 000.mp4 001.mp4 002.mp4 003.mp4 004.mp4 contact_sheet.png samples.jsonl; do
  cmp "$WORK/one/$f" "$WORK/two/$f" || die "$f differs between 1 and 2 ranks"
done
printf '%s\n' '{"prompt": "x", "color": "teal"}' > "$WORK/bad.jsonl"
expect_exit 2 "bad.jsonl:1: \"color\" = teal is not one of" -- "$REEL" eval --ckpt "$RUN" --out "$WORK/bad" \
  --prompts-file "$WORK/bad.jsonl"
expect_exit 2 "has no checkpoints/ directory" -- "$REEL" eval-run "$WORK/nothing"

# The report: embedded videos, then with a 0 MB budget linked ones; every reference resolves.
check_page() {  # page
  python3 - "$1" <<'PY'
import os, re, sys
page = sys.argv[1]
html = open(page).read()
assert html.count("<svg") >= 5, "charts missing"
assert "<video" in html and "step 4" in html and "step 2" in html, "videos missing"
refs = re.findall(r'(?:src|href)="([^"]*)"', html)
assert refs, "no references at all"
for ref in refs:
    if ref.startswith("data:video/mp4;base64,"):
        continue
    assert "://" not in ref, f"external reference {ref}"
    path = os.path.join(os.path.dirname(os.path.abspath(page)), ref)
    assert os.path.exists(path), f"{ref} does not exist"
print(len(refs), "references")
PY
}
"$REEL" report "$RUN" > "$WORK/report.log" 2>&1 || die "$(cat "$WORK/report.log")"
check_page "$RUN/report.html" > "$WORK/embedded.txt" || die "embedded report"
grep -q "data:video/mp4;base64," "$RUN/report.html" || die "no embedded video"
mkdir -p "$WORK/elsewhere"
"$REEL" report "$RUN" --out "$WORK/elsewhere/page.html" --embed-mb 0 --videos 2 > /dev/null || die "linked report"
check_page "$WORK/elsewhere/page.html" > /dev/null || die "linked report"
grep -q 'src="../run/eval/step_00000004/000.mp4"' "$WORK/elsewhere/page.html" || die "no relative video link"
expect_exit 2 "has neither metrics.jsonl nor eval.jsonl" -- "$REEL" report "$WORK/data"
echo "eval_run_report: OK"
