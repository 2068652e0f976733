# `reel --help` lists every command and `reel <command> --help` lists its options.
source "$(dirname "$0")/lib/common.bash"
out=$("$REEL" --help)
for c in train sample eval "data synth" "bench step" "ckpt inspect"; do
  echo "$out" | grep -q "$c" || die "reel --help does not list '$c'"
done
check() { local o; o=$("$REEL" "$@" --help) || die "'reel $* --help' failed"; shift "$#"; echo "$o"; }
check train | grep -q -- "--resume" || die "train --help lacks --resume"
for opt in --ckpt --prompt --prompts --out --steps --cfg --seed; do
  check sample | grep -q -- "$opt" || die "sample --help lacks $opt"
done
for opt in --ckpt --out --prompts; do check eval | grep -q -- "$opt" || die "eval --help lacks $opt"; done
check data synth | grep -q -- "--buckets" || die "data synth --help lacks --buckets"
check bench step | grep -q -- "--steps" || die "bench step --help lacks --steps"
check ckpt inspect | grep -q "FILE" || die "ckpt inspect --help lacks FILE"
"$REEL" --version | grep -Eq "^reel [0-9]+\.[0-9]+\.[0-9]+" || die "--version"
echo "PASS"
