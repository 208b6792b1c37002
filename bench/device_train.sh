#!/bin/bash
# Train classifier candidates on a borrowed GPU machine that has JAX but no TensorFlow and no network:
# Keras 3 on the JAX backend, several runs side by side on the one GPU, each stopped (Ctrl-C, so its last
# epoch is saved and resumable) MINUTES after the script started at the latest, set-up included. Each run's
# folder (its console log inside as train.log; last.keras only while the run is unfinished) comes back as
# one tar file under $OUT (or ./runs/device when OUT is unset); convert and evaluate them here, with
# TensorFlow, and finish or continue an unfinished one with ferlite train --resume.
#
#   bench/device_train.sh MINUTES "TRAIN ARGS" ["TRAIN ARGS" ...]
#   bench/device_train.sh 9 "--epochs 150 --seed 11 --name gpu-a" "--epochs 150 --seed 12 --name gpu-b"
#
# The data set is data/fer2013 (FER2013 labels; with FER+'s votes beside them when they were packed, for
# --soft-labels). What has to travel with the repository (ignored through .git/info/exclude, about 52 MB
# together). The committed run folders under runs/train (about 20 MB) then take the tree over a 64 MiB
# transfer limit: copy the teachers a run needs into .device/ (cp runs/train/gpu-wfp150/best.keras
# .device/wfp150.keras) and make the call from a throw-away branch that deletes runs/train/.
#   python bench/fer2013_pack.py pack ../shared/data/fer2013/fer2013.csv.gz .device/fer2013.xz \
#       --ferplus ../shared/data/fer2013/fer2013new.csv
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#       keras==3.15.1 namex==0.1.0 optree==0.20.0
# and the call carries ".device" and ".whl" (teacher models named by the runs go in .device too). An ensemble
# of teachers travels as one file: the teachers.npz that a run distilling from them leaves in its folder
# (cp runs/train/RUN/teachers.npz .device/; then --teacher .device/teachers.npz). It holds the teachers'
# logits for FER2013's Training faces, and is refused if the data set there gives other faces.
# With CLOSE_AVERAGING=1, a run the deadline stops in its weight-averaging phase (--swa) is closed at the epoch
# it reached: its config.json's epochs and swa drop by the epochs it did not train (the schedule of those it
# did is unchanged) and ferlite train --resume recalibrates and scores the average there. For runs meant to
# average until the deadline: --epochs N --swa N with N more than the time allows.
# Set FERLITE_PYTHON to use another interpreter (a local test).
set -euo pipefail
minutes=${1:?usage: bench/device_train.sh MINUTES "TRAIN ARGS" ...}
shift
deadline=$(($(date +%s) + $(awk "BEGIN { print int($minutes * 60) }")))
py=${FERLITE_PYTHON:-python3}
out=${OUT:-runs/device}
mkdir -p "$out"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TQDM_DISABLE=1  # epoch lines only
if [ -d .whl ] && ! "$py" -c "import keras" 2> /dev/null; then  # the GPU machine lacks Keras
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    "$py" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site .
    export PYTHONPATH=/tmp/site
fi
if [ ! -f data/fer2013/manifest.csv ]; then
    "$py" bench/fer2013_pack.py unpack .device/fer2013.xz /tmp/fer2013/fer2013.csv
    votes=()
    [ -f /tmp/fer2013/fer2013new.csv ] && votes=(--ferplus /tmp/fer2013/fer2013new.csv --keep-fer2013-labels)
    "$py" -P -m ferlite import /tmp/fer2013/fer2013.csv "${votes[@]}" --out data/fer2013 2>&1 | tail -n 4
fi
names=()
mkdir -p runs/device-logs
left=$((deadline - $(date +%s)))
echo "training for at most $left s"
for spec in "$@"; do
    name=$(sed -n 's/.*--name \([^ ]*\).*/\1/p' <<< "$spec")
    names+=("$name")
    # shellcheck disable=SC2086  # the spec is a list of options
    timeout -s INT -k 60 "$left" "$py" -P -m ferlite train data/fer2013 $spec --project runs/train \
        > "runs/device-logs/$name.log" 2>&1 &
done
wait || true
if [ "${CLOSE_AVERAGING:-}" = 1 ]; then
    for name in "${names[@]}"; do
        run=runs/train/$name
        "$py" - "$run" <<'PY' && "$py" -P -m ferlite train --resume "$run" >> "runs/device-logs/$name.log" 2>&1 &
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
state = json.loads((run / "state.json").read_text())
cfg = json.loads((run / "config.json").read_text())
short = cfg["epochs"] - state["epoch"]
if not state.get("swa_count") or short <= 0:
    sys.exit(1)
cfg.update(epochs=state["epoch"], swa=cfg["swa"] - short)
(run / "config.json").write_text(json.dumps(cfg, indent=1))
print(f"{run}: closed at epoch {state['epoch']} ({cfg['swa']} averaged)")
PY
    done
    wait || true
fi
for name in "${names[@]}"; do
    mkdir -p "runs/train/$name"
    cp "runs/device-logs/$name.log" "runs/train/$name/train.log"
    skip=()
    grep -qs '"recalibrated"' "runs/train/$name/state.json" && skip=(--exclude "$name/last.keras")
    tar -cf "$out/$name.tar" "${skip[@]}" -C runs/train "$name"
    echo "== $name"; grep -E "^epoch +[12]/|^(distilling|ferlite_)" "runs/device-logs/$name.log" || true
    tail -n 4 "runs/device-logs/$name.log" | cut -c 1-300
done
nvidia-smi --query-gpu=name,memory.used --format=csv 2> /dev/null || true
