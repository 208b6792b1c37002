#!/bin/bash
# Train classifier candidates on a borrowed GPU machine that has JAX but no TensorFlow and no network:
# Keras 3 on the JAX backend, several runs side by side on the one GPU, each stopped (Ctrl-C, so its last
# epoch is saved and resumable) after MINUTES at the latest. Each run's folder comes back as one tar file
# under $OUT (or ./runs/device when OUT is unset); convert and evaluate them here, with TensorFlow.
#
#   bench/device_train.sh MINUTES "TRAIN ARGS" ["TRAIN ARGS" ...]
#   bench/device_train.sh 9 "--epochs 150 --seed 11 --name gpu-a" "--epochs 150 --seed 12 --name gpu-b"
#
# What has to travel with the repository (both ignored through .git/info/exclude, about 58 MB together;
# move any large committed run folder out of the tree for the call if the 64 MiB limit bites):
#   python bench/fer2013_pack.py pack ../shared/data/fer2013/fer2013.csv.gz .device/fer2013.xz
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#       keras==3.15.1 namex==0.1.0 optree==0.20.0
# and the call carries ".device" and ".whl". Set FERLITE_PYTHON to use another interpreter (a local test).
set -euo pipefail
minutes=${1:?usage: bench/device_train.sh MINUTES "TRAIN ARGS" ...}
shift
py=${FERLITE_PYTHON:-python3}
out=${OUT:-runs/device}
mkdir -p "$out"
if [ -d .whl ] && ! "$py" -c "import keras" 2> /dev/null; then  # the GPU machine lacks Keras
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    "$py" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site .
    export PYTHONPATH=/tmp/site
fi
if [ ! -f data/fer2013/manifest.csv ]; then
    "$py" bench/fer2013_pack.py unpack .device/fer2013.xz /tmp/fer2013.csv
    "$py" -m ferlite import /tmp/fer2013.csv --out data/fer2013 > "$out/import.log" 2>&1
fi
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TQDM_DISABLE=1  # epoch lines only
names=()
for spec in "$@"; do
    name=$(sed -n 's/.*--name \([^ ]*\).*/\1/p' <<< "$spec")
    names+=("$name")
    # shellcheck disable=SC2086  # the spec is a list of options
    timeout -s INT "${minutes}m" "$py" -m ferlite train data/fer2013 $spec --project runs/train > "$out/$name.log" 2>&1 &
done
wait
for name in "${names[@]}"; do
    tar -cf "$out/$name.tar" -C runs/train "$name"
    tail -n 3 "$out/$name.log"
done
nvidia-smi --query-gpu=name,memory.used --format=csv 2> /dev/null || true
