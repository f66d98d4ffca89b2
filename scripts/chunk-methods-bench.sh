#!/usr/bin/env bash
# Times whole `mergeforge merge` commands, one per method and backend, on the demo family
# (target/demo/models: base + ft1..ft3, made by `bin/mergeforge demo`), page cache warm.
# Usage: scripts/chunk-methods-bench.sh [backends (default "native java")] [methods]
# Prints one markdown row per merge: method | backend | wall seconds | CPU seconds (user + sys) of the whole JVM command.
set -euo pipefail
M=${MODELS:-target/demo/models}
W=${WORK:-target/chunk-bench}
BACKENDS=${1:-native java}
METHODS=${2:-task_arithmetic ties dare_ties breadcrumbs della sce model_stock nearswap nuslerp slerp}
mkdir -p "$W"
B=$(realpath "$M/base"); F1=$(realpath "$M/ft1"); F2=$(realpath "$M/ft2"); F3=$(realpath "$M/ft3")
models() { # method, per-model parameters
  printf 'merge_method: %s\nbase_model: %s\nmodels:\n' "$1" "$B"
  for f in "$F1" "$F2" "$F3"; do printf '  - model: %s\n    parameters:\n      %s\n' "$f" "$2"; done
}
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
    sce) printf 'merge_method: sce\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\n  - model: %s\nparameters:\n  select_topk: 0.5\n' "$B" "$F1" "$F2" "$F3" ;;
    model_stock) printf 'merge_method: model_stock\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\n  - model: %s\n' "$B" "$F1" "$F2" "$F3" ;;
    nearswap) printf 'merge_method: nearswap\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\nparameters:\n  t: 0.001\n' "$B" "$B" "$F1" ;;
    nuslerp) printf 'merge_method: nuslerp\nbase_model: %s\nmodels:\n  - model: %s\n    parameters:\n      weight: 0.5\n  - model: %s\n    parameters:\n      weight: 0.5\n' "$B" "$F1" "$F2" ;;
    slerp) printf 'merge_method: slerp\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\nparameters:\n  t: 0.5\n' "$B" "$B" "$F1" ;;
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
    printf '| %s | %s | %.2f | %.2f |\n' "$m" "$be" "$wall" "$(echo "$user + $sys" | bc)"
  done
  if [ -n "${KEEP:-}" ]; then :; else
    for be in $BACKENDS; do [ -d "$W/out-$m-$be" ] && [ "$be" != "$(echo $BACKENDS | cut -d' ' -f1)" ] && { cmp -s "$W/out-$m-$be/model.safetensors" "$W/out-$m-$(echo $BACKENDS | cut -d' ' -f1)/model.safetensors" && echo "  ($m: $be output identical)" || echo "  ($m: $be output DIFFERS)"; }; done
    for be in $BACKENDS; do rm -rf "$W/out-$m-$be"; done
  fi
done
