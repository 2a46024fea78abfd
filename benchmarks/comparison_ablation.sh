#!/bin/bash
# Issue-6 ablation: five fits of benchmarks/comparison.py sharing one GPU, as in the comparison table, on
# the same 900-pair cohort, with the input / head / learning-rate variants of benchmarks/results/
# comparison_ablation.md. Run from the repository root (H200: one 10-minute device call, ~415 s).
#   bash benchmarks/comparison_ablation.sh [WORK] [SET]     (EPOCHS=30 MAXT=00:00:03:30 by default)
# SET: inputs (default: the session-5 variants below) or local_change (BASED-3D with and without
# model.local_change_window=3, two seeds each: does pooling what appeared between the exams find the new
# lesions the comparison's BASED-3D missed?).
set -u
WORK=${1:-/tmp/ablation}
SET=${2:-inputs}
COHORT=$WORK/cohort CACHE=$WORK/cache
mkdir -p "$WORK"
CORES=$(nproc)
python3 -m onconet synth --out "$COHORT" --patients 900 --seed 0 --sites internal,internal,external --size small \
  --workers "$CORES" > "$WORK/synth.log" 2>&1 || { tail -20 "$WORK/synth.log"; exit 1; }
python3 -m onconet ingest --dicom "$COHORT/dicom" --cache "$CACHE" --workers "$CORES" --no-progress \
  > "$WORK/ingest.log" 2>&1 || { tail -20 "$WORK/ingest.log"; exit 1; }
COMMON=(--cohort "$COHORT" --cache "$CACHE" --labels benchmarks/results/comparison/labels.csv
  --max-epochs "${EPOCHS:-30}" --max-time "${MAXT:-00:00:03:30}" --bootstrap 200
  --extra=--checkpoint.monitor=val/macro_auroc --extra=--checkpoint.mode=max
  --extra=--early_stopping.monitor=val/macro_auroc --extra=--early_stopping.mode=max
  --extra=--early_stopping.patience=1000)
NO_PATCH_MAX=--extra=--model.backbone_kwargs.patch_max=false
variant() {
  local name=$1; shift
  python3 benchmarks/comparison.py "${COMMON[@]}" --work "$WORK/$name" --out "$WORK/$name/res" "$@" \
    > "$WORK/$name.log" 2>&1
  echo "$name: exit $?"
}
case $SET in
  inputs)
    variant A_monarch --models monarch3d "$NO_PATCH_MAX" &
    variant B_monarch_pm --models monarch3d &
    variant C_monarch_pm_nohead --models monarch3d --extra=--model.suvmax_head=false \
      --extra=--model.suvmax_loss_weight=0 &
    variant D_based_pm --models based3d &
    variant E_monarch_pm_lr1e3 --models monarch3d --extra=--model.learning_rate=0.001 &
    NAMES="A_monarch B_monarch_pm C_monarch_pm_nohead D_based_pm E_monarch_pm_lr1e3" ;;
  local_change)
    for seed in 0 1; do
      variant "F_based_seed$seed" --models based3d "--extra=--seed_everything=$seed" &
      variant "G_based_local_change_seed$seed" --models based3d "--extra=--seed_everything=$seed" \
        --extra=--model.local_change_window=3 &
    done
    NAMES="F_based_seed0 F_based_seed1 G_based_local_change_seed0 G_based_local_change_seed1" ;;
  *) echo "unknown SET $SET (inputs, local_change)"; exit 2 ;;
esac
wait
for name in $NAMES; do
  grep -E '^\| (monarch3d|based3d) ' "$WORK/$name/res/comparison.md" | sed "s/^/$name /"
done
