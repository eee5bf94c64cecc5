#!/usr/bin/env bash
# dump_outputs.sh REPO OUT: every example's emitted files (torch -O0/-O1/-O2, NumPy -O0/-O2 per
# model), --report, summary (text and JSON) and diagram source (default, --depth 1, --optimized)
# from the checkout REPO (its .venv), into OUT. Run it on two checkouts and `diff -r` the
# folders to see what a change did to what users get.
set -u
repo=$(cd "$1" && pwd); out=$2; mkdir -p "$out"; out=$(cd "$out" && pwd); cd "$repo"
for f in examples/*.net; do
  b=$(basename "$f" .net)
  for o in 0 1 2; do
    .venv/bin/netc compile "$f" --backend torch -O$o -o "$out/$b.O$o.py" >/dev/null 2>&1
    .venv/bin/netc compile "$f" --backend torch -O$o --report -o /dev/null > "$out/$b.O$o.report" 2>&1
  done
  for m in $(.venv/bin/python -c "import netc; p=netc.compile_file('$f'); print(' '.join(x for x in p.models if x not in p.pairs))"); do
    .venv/bin/netc compile "$f" --backend numpy --model "$m" -o "$out/$b.$m.np.py" >/dev/null 2>&1
    .venv/bin/netc compile "$f" --backend numpy --model "$m" -O2 -o "$out/$b.$m.np.O2.py" >/dev/null 2>&1
  done
  .venv/bin/netc summary "$f" > "$out/$b.summary" 2>&1
  .venv/bin/netc summary "$f" --json > "$out/$b.summary.json" 2>&1
  .venv/bin/netc render "$f" -o "$out/$b.dot" >/dev/null 2>&1
  .venv/bin/netc render "$f" --depth 1 -o "$out/$b.d1.dot" >/dev/null 2>&1
  .venv/bin/netc render "$f" --optimized -o "$out/$b.opt.dot" >/dev/null 2>&1
done
