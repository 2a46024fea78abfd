#!/bin/bash
# Issue-6 ablation: five fits of benchmarks/comparison.py sharing one GPU, as in the comparison table, on
# the same 900-pair cohort, with the input / head / learning-rate variants of benchmarks/results/
# comparison_ablation.md. Run from the repository root (H200: one 10-minute device call, ~415 s).
#   bash benchmarks/comparison_ablation.sh [WORK]     (EPOCHS=30 MAXT=00:00:03:30 by default)
set -u
WORK=${1:-/tmp/ablation}
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
variant A_monarch --models monarch3d "$NO_PATCH_MAX" &
variant B_monarch_pm --models monarch3d &
variant C_monarch_pm_nohead --models monarch3d --extra=--model.suvmax_head=false \
  --extra=--model.suvmax_loss_weight=0 &
variant D_based_pm --models based3d &
variant E_monarch_pm_lr1e3 --models monarch3d --extra=--model.learning_rate=0.001 &
wait
for name in A_monarch B_monarch_pm C_monarch_pm_nohead D_based_pm E_monarch_pm_lr1e3; do
  grep -E '^\| (monarch3d|based3d) ' "$WORK/$name/res/comparison.md" | sed "s/^/$name /"
done
