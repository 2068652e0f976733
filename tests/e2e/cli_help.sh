# `reel --help` lists every command and `reel <command> --help` lists its options.
source "$(dirname "$0")/lib/common.bash"
# Output is captured first and searched with here-strings: `cmd | grep -q` can fail under
# pipefail when grep exits early and the writer gets SIGPIPE.
out=$("$REEL" --help)
for c in train recipe sample eval eval-run report plan "data synth" "bench step" "bench comm" "ckpt inspect" "ckpt compare" "ckpt verify" "ckpt average"; do
  grep -q "$c" <<<"$out" || die "reel --help does not list '$c'"
done
# has "COMMAND WORDS" OPTION...: `reel COMMAND WORDS --help` succeeds and mentions every OPTION.
has() {
  local words=($1) o; shift
  o=$("$REEL" "${words[@]}" --help) || die "'reel $* --help' failed"
  for opt in "$@"; do grep -q -- "$opt" <<<"$o" || die "reel ${words[*]} --help lacks $opt"; done
}
has train --resume
has recipe --get
has sample --ckpt --prompt --prompts --out --steps --cfg --seed
has eval --ckpt --out --prompts --prompts-file
has eval-run --watch --poll --max-wait --prompts-file --no-videos
has report --out --videos --embed-mb
has plan --gpus --gpu --json
has "data synth" --buckets
has "bench step" --steps --measure
has "bench comm" --min-bytes --max-bytes --ops --timeout
has "ckpt inspect" FILE
has "ckpt compare" --prefix --rtol
has "ckpt verify" FILE
has "ckpt average" "-o OUT"
"$REEL" --version | grep -Eq "^reel [0-9]+\.[0-9]+\.[0-9]+" || die "--version"
echo "PASS"
