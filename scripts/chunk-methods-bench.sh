#!/usr/bin/env bash
# Times whole `mergeforge merge` commands, one per method and backend, on the demo family
# (target/demo/models: base + ft1..ft3, made by `bin/mergeforge demo`), page cache warm. MODELS=DIR runs it on
# another family with base, ft1, ft2 (and ft3 if there), e.g. the slice `bench --shape 70b --keep` leaves.
# Usage: scripts/chunk-methods-bench.sh [backends (default "native java")] [methods]
# Prints one markdown row per merge: method | backend | wall seconds | CPU seconds (user + sys) of the whole JVM command
# | wall and CPU as multiples of task_arithmetic's on the same backend in the same run (list it first; the default does).
# The default methods are the whole registry but the data-informed regmean and fisher (they need statistics).
set -euo pipefail
M=${MODELS:-target/demo/models}
W=${WORK:-target/chunk-bench}
BACKENDS=${1:-native java}
METHODS=${2:-task_arithmetic linear ties dare_ties dare_linear breadcrumbs breadcrumbs_ties della della_linear sce model_stock nearswap nuslerp slerp multislerp karcher arcee_fusion ram ramplus_tl passthrough}
mkdir -p "$W"
B=$(realpath "$M/base"); F1=$(realpath "$M/ft1"); F2=$(realpath "$M/ft2")
# a third fine-tune where the family has one (the demo's does; `bench --shape 70b` makes two)
F3=$( [ -d "$M/ft3" ] && realpath "$M/ft3" || true)
models() { # method, per-model parameters
  printf 'merge_method: %s\nbase_model: %s\nmodels:\n' "$1" "$B"
  for f in "$F1" "$F2" $F3; do printf '  - model: %s\n    parameters:\n      %s\n' "$f" "$2"; done
}
each() { for f in "$F1" "$F2" $F3; do printf '  - model: %s\n' "$f"; done; }   # the fine-tunes, no parameters
config() {
  case $1 in
    task_arithmetic) models task_arithmetic "weight: 1.0" ;;
    ties) models ties "weight: 1.0
      density: 0.5" ;;
    dare_ties) models dare_ties "weight: 1.0
      density: 0.5" ;;
    breadcrumbs) models breadcrumbs "weight: 1.0
      density: 0.9
      gamma: 0.01" ;;
    della) models della "weight: 1.0
      density: 0.5
      epsilon: 0.15" ;;
    sce) printf 'merge_method: sce\nbase_model: %s\nmodels:\n' "$B"; each; printf 'parameters:\n  select_topk: 0.5\n' ;;
    model_stock) printf 'merge_method: model_stock\nbase_model: %s\nmodels:\n' "$B"; each ;;
    nearswap) printf 'merge_method: nearswap\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\nparameters:\n  t: 0.001\n' "$B" "$B" "$F1" ;;
    nuslerp) printf 'merge_method: nuslerp\nbase_model: %s\nmodels:\n  - model: %s\n    parameters:\n      weight: 0.5\n  - model: %s\n    parameters:\n      weight: 0.5\n' "$B" "$F1" "$F2" ;;
    slerp) printf 'merge_method: slerp\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\nparameters:\n  t: 0.5\n' "$B" "$B" "$F1" ;;
    linear) printf 'merge_method: linear\nmodels:\n' ; for f in "$F1" "$F2" $F3; do printf '  - model: %s\n    parameters:\n      weight: 1.0\n' "$f"; done ;;
    dare_linear) models dare_linear "weight: 1.0
      density: 0.5" ;;
    breadcrumbs_ties) models breadcrumbs_ties "weight: 1.0
      density: 0.9
      gamma: 0.01" ;;
    della_linear) models della_linear "weight: 1.0
      density: 0.5
      epsilon: 0.15" ;;
    multislerp) models multislerp "weight: 1.0" ;;
    karcher) printf 'merge_method: karcher\nbase_model: %s\nmodels:\n' "$B"; each ;;
    arcee_fusion) printf 'merge_method: arcee_fusion\nbase_model: %s\nmodels:\n  - model: %s\n' "$B" "$F1" ;;
    ram|ramplus_tl) printf 'merge_method: %s\nbase_model: %s\nmodels:\n' "$1" "$B"; each ;;
    passthrough) printf 'merge_method: passthrough\nmodels:\n  - model: %s\n' "$F1" ;;
    *) echo "unknown method $1" >&2; exit 2 ;;
  esac
  echo "dtype: bfloat16"
}
cat "$M"/*/model.safetensors > /dev/null   # page cache warm
for m in $METHODS; do
  config "$m" > "$W/$m.yml"
  for be in $BACKENDS; do
    /usr/bin/time -f '%e %U %S' -o "$W/$m-$be.time" ${MF:-bin/mergeforge} merge -q --overwrite --backend "$be" "$W/$m.yml" "$W/out-$m-$be" > "$W/$m-$be.log" 2>&1 \
      || { echo "| $m | $be | FAILED (see $W/$m-$be.log) |"; continue; }
    read -r wall user sys < "$W/$m-$be.time"
    cpu=$(echo "$user + $sys" | bc)
    if [ "$m" = task_arithmetic ]; then eval "ta_wall_$be=$wall ta_cpu_$be=$cpu"; fi
    tw=$(eval echo "\${ta_wall_$be:-}"); tc=$(eval echo "\${ta_cpu_$be:-}")
    if [ -n "$tw" ]; then ratio=$(printf '%.1f | %.1f' "$(echo "$wall / $tw" | bc -l)" "$(echo "$cpu / $tc" | bc -l)"); else ratio='- | -'; fi
    printf '| %s | %s | %.2f | %.2f | %s |\n' "$m" "$be" "$wall" "$cpu" "$ratio"
  done
  if [ -n "${KEEP:-}" ]; then :; else
    for be in $BACKENDS; do [ -d "$W/out-$m-$be" ] && [ "$be" != "$(echo $BACKENDS | cut -d' ' -f1)" ] && { cmp -s "$W/out-$m-$be/model.safetensors" "$W/out-$m-$(echo $BACKENDS | cut -d' ' -f1)/model.safetensors" && echo "  ($m: $be output identical)" || echo "  ($m: $be output DIFFERS)"; }; done
    for be in $BACKENDS; do rm -rf "$W/out-$m-$be"; done
  fi
done
