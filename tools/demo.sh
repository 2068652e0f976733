#!/usr/bin/env bash
# The main job, from a fresh machine: installs what is missing, builds, generates the synthetic
# dataset, trains the tiny text-to-video recipe, samples videos for a few prompts, and scores
# the held-out prompt set into runs/demo/eval/eval.json.
# Extra arguments are recipe overrides for training (e.g. tools/demo.sh trainer.steps=200).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
reel=build/reel

job_start=$(date +%s)
echo "demo: generating the synthetic dataset"
rm -rf runs/data/synth runs/demo
$reel data synth --out runs/data/synth --seed 0

echo "demo: training recipes/tiny/t2v.yaml"
$reel train recipes/tiny/t2v.yaml "$@"
ckpt=runs/demo  # the run directory: its latest checkpoint

echo "demo: sampling"
$reel sample --ckpt "$ckpt" --prompts recipes/tiny/demo_prompts.txt --out runs/demo/samples
echo "demo: evaluating"
$reel eval --ckpt "$ckpt" --out runs/demo/eval
job_end=$(date +%s)

echo
echo "demo: done in $((job_end - job_start))s (data, training, sampling, evaluation)"
echo "  videos:        runs/demo/samples/*.mp4 (prompts in runs/demo/samples/samples.jsonl)"
echo "  contact sheet: runs/demo/samples/contact_sheet.png"
echo "  evaluation:    runs/demo/eval/eval.json (videos and contact sheet beside it)"
echo "  metrics:       runs/demo/metrics.jsonl"
