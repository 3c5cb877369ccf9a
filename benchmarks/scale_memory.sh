#!/usr/bin/env bash
# Peak memory of `mlclip features` and `mlclip train` on the default world and on one 10x larger
# (issue 13). Usage: bash benchmarks/scale_memory.sh DIR   (DIR gets two workspaces, ~5 GB)
# Prints one line per command: workspace, command, wall time, maximum resident set (GB).
set -euo pipefail
dir=${1:?usage: scale_memory.sh DIR}
train_args=(train --method mla --langs de,fr,es,it,ru,pl,tr,zh,ja --nlt-steps 300 --le-steps 20)
for size in 30000 300000; do
  ws="$dir/world-$size"
  [ -f "$ws/manifests/world.parquet" ] || mlclip -w "$ws" prepare world --root "$ws/data/world" --size "$size" > /dev/null
  for step in features train; do
    if [ "$step" = features ]; then args=(features world --split train); else args=("${train_args[@]}" --out "$ws/ext-$RANDOM"); fi
    /usr/bin/time -v mlclip -w "$ws" "${args[@]}" > "$ws/$step.log" 2> "$ws/$step.time"
    wall=$(grep "Elapsed" "$ws/$step.time" | awk '{print $NF}')
    peak=$(grep "Maximum resident" "$ws/$step.time" | awk '{printf "%.2f", $NF / 1048576}')
    echo "world-$size $step wall $wall peak ${peak} GB"
  done
done
