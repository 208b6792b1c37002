#!/usr/bin/env bash
# Proof 4: ferlite installs with systemd/install.sh and runs on arm64 Raspberry Pi OS Bookworm, without a Pi.
#
# On an x86_64 Debian 12 host (root), with qemu-aarch64 through binfmt_misc:
#   1. a debootstrapped arm64 Bookworm rootfs (python3, python3-venv, python3-numpy = Debian's numpy 1.24.2,
#      as on Raspberry Pi OS), fresh for every run, from a cached tarball;
#   2. aarch64 cp311 wheels downloaded on the host (every manylinux tag: ai-edge-litert 2.x is manylinux_2_27
#      only), resolved against numpy==1.24.2, plus the project's own wheel;
#   3. inside the rootfs, offline: install.sh --no-picamera2 --wheels DIR --from ferlite.whl, twice
#      (the second run must keep a local edit of the config), then checks of the venv, user, config and unit;
#   4. inside: the edge tests that need no TensorFlow; `ferlite recognize` on the sample clip's first frames
#      and the sample photo (faces compared with an x86 run by IoU); the two bundled int8 classifiers (default,
#      FER+ labels; fer2013) on 144 fixed input tensors, compared with x86 (computed here with the calling venv's python):
#      the raw int8 outputs must be byte-identical, with LiteRT's default kernels (XNNPACK, what ferlite
#      runs; 1 and 2 threads) and its reference kernels. (The models end at their logits: TFLite's int8
#      softmax kernel rounds differently on arm64, so ferlite applies softmax in float; those float
#      probabilities must agree to 1e-6.);
#   5. inside: uninstall.sh (keeps /etc/ferlite), then uninstall.sh --purge.
# LiteRT runs under qemu with QEMU_CPU=cortex-a72 (the Pi 4 core) and a Pi 4 /proc/cpuinfo bind-mounted:
# under qemu's default `max` CPU, XNNPACK picks kernels whose int8 outputs are far off, and the x86 cpuinfo
# makes it crash.
#
# Cache (FERLITE_CI_CACHE, default /var/cache/ferlite-ci): the rootfs tarball and the wheels, keyed by hashes
# of what they are made from; a second run skips debootstrap and the download.
# Environment: PYTHON (x86 python with the project and ai-edge-litert; default: the active venv, else
# .venv/bin/python), DEBIAN_MIRROR (default: the host's apt sources, else deb.debian.org), QEMU_CPU
# (default cortex-a72), FERLITE_CI_TESTS (test files to run inside), FERLITE_CI_DESELECT (test ids not to run
# inside), FERLITE_CI_FRAMES (frames of the clip to recognize),
# FERLITE_CI_KEEP=1 (keep the work folder).
# Exit status 0 only when every check passed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/systemd/tests
CACHE=${FERLITE_CI_CACHE:-/var/cache/ferlite-ci}
CPU=${QEMU_CPU:-cortex-a72}
CPUINFO=$HERE/fake-cpuinfo-pi4
SUITE=bookworm
DEBIAN_NUMPY=1.24.2          # python3-numpy in Bookworm (and Raspberry Pi OS Bookworm)
PYVER=3.11                   # python3 in Bookworm
N_FACES=144
TESTS=${FERLITE_CI_TESTS:-tests/test_sources.py tests/test_tracking.py tests/test_sinks.py tests/test_detectors.py tests/test_cli.py}
# Deselected under emulation, all run in the ordinary x86 test suite: a simulated day of SQLite logging, about
# write volume, not the architecture (2 minutes under qemu); the exit-code table, which reads docs/ (not copied
# in), and the missing-file exit codes of every command, workstation ones included (this venv has [edge] only).
DESELECT=${FERLITE_CI_DESELECT:-tests/test_sinks.py::test_a_day_of_logging_stays_well_under_50_mb \
tests/test_cli.py::test_one_exit_code_table_in_help_and_docs \
tests/test_cli.py::test_a_missing_file_gives_the_same_exit_code_from_every_command}
# Frames of the sample clip that `ferlite recognize` runs on aarch64 (YuNet costs about 2 CPU-seconds a frame
# under qemu) and on x86 for the comparison.
FRAMES=${FERLITE_CI_FRAMES:-20}
ROOTFS_INCLUDE=python3,python3-venv,python3-numpy,systemd,procps   # systemd, procps (/bin/kill, the unit's ExecReload): as on Raspberry Pi OS
# What the emulated venv needs beyond ferlite[edge]: the Pi pins, and pytest (+ pandas for test_sinks).
PINS=("numpy==$DEBIAN_NUMPY" "opencv-python-headless<4.12")
TEST_REQS=(pytest pandas)
VENV=/opt/ferlite/venv

# --- stages, timings, failure (shared with the image build) ------------------------------------------
PROG=aarch64_proof
IMAGE_DIR=$REPO/systemd/image
. "$IMAGE_DIR/lib.sh"
WORK=""
finish() {
    local rc=$?
    local failed_stage=$STAGE
    if [ "$rc" = 0 ]; then end_stage; elif [ -n "$STAGE" ]; then STAGE="$STAGE (FAILED)"; end_stage; fi
    print_timings
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${FERLITE_CI_KEEP:-0}" = 1 ]; then
            echo "kept the work folder: $WORK"
        elif findmnt -rn -o TARGET | grep -q "^$WORK/"; then
            echo "NOT removing $WORK: something is still mounted under it" >&2
        else
            rm -rf --one-file-system "$WORK"
        fi
    fi
    if [ "$rc" = 0 ]; then
        echo "aarch64_proof: PASS"
    else
        echo "aarch64_proof: FAILED (exit $rc) in stage: ${failed_stage:-setup}" >&2
    fi
}
trap finish EXIT

# Run a command inside an arm64 tree under qemu-aarch64, in a private mount namespace (nothing stays mounted).
in_arm() {
    local root=$1; shift
    unshare --mount --propagation private -- /bin/sh -ec '
        R=$1 CPUINFO=$2 CPU=$3; shift 3
        mount -t proc proc "$R/proc"
        mount --bind "$CPUINFO" "$R/proc/cpuinfo"
        mount --rbind /sys "$R/sys"
        mount --rbind /dev "$R/dev"
        mount -t tmpfs tmpfs "$R/run"
        exec chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 TMPDIR=/tmp QEMU_CPU="$CPU" "$@"
    ' in_arm "$root" "$CPUINFO" "$CPU" "$@"
}

# Copy the project's files (tracked and untracked-but-not-ignored) into $1.
copy_tree() {
    mkdir -p "$1"
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
            [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) | tar -xf - -C "$1"
    else
        tar -C "$REPO" --exclude=./.venv --exclude=./runs --exclude=./.git --exclude=./.cache -cf - . | tar -xf - -C "$1"
    fi
}

# --- 0. host ----------------------------------------------------------------------------------------
stage "host: checks and apt packages"
[ "$(id -u)" -eq 0 ] || fail "run as root (it mounts binfmt_misc, debootstraps and chroots)"
[ "$(uname -m)" = x86_64 ] || fail "this proof emulates aarch64 on an x86_64 host; this is $(uname -m)"
[ -f "$CPUINFO" ] || fail "$CPUINFO is missing"
[ "$(nice)" -lt 10 ] && renice -n 10 -p $$ >/dev/null     # leave the CPU to other work (training)
ionice -c 2 -n 7 -p $$ 2>/dev/null || true
if [ -z "${PYTHON:-}" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then PYTHON=$VIRTUAL_ENV/bin/python
    elif [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python
    else PYTHON=python3; fi
fi
"$PYTHON" -c 'import numpy, cv2, ai_edge_litert, edge' 2>/dev/null \
    || fail "$PYTHON cannot import numpy, cv2, ai_edge_litert and edge: set PYTHON to the project's venv python"
echo "x86 reference python: $PYTHON"
need=()
for p in qemu-user-static binfmt-support debootstrap; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || fail "apt-get install ${need[*]} failed"
else
    echo "qemu-user-static, binfmt-support, debootstrap: installed"
fi
mkdir -p "$CACHE"
# Work folders of runs that were killed (nothing mounted: every mount was in a private namespace).
find "$CACHE" -maxdepth 1 -name 'run.*' -type d -mmin +720 -exec rm -rf --one-file-system {} + 2>/dev/null || true
WORK=$(mktemp -d "$CACHE/run.XXXXXX")
echo "cache: $CACHE; work: $WORK"

# --- 1. binfmt ----------------------------------------------------------------------------------------
stage "binfmt: qemu-aarch64"
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
    || fail "qemu-aarch64 is not registered in binfmt_misc (update-binfmts --enable qemu-aarch64)"
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || fail "qemu-aarch64 binfmt lacks the F (fix-binary) flag, so a chroot cannot find the emulator"
sed -n 's/^\(interpreter\|flags\)/  &/p' /proc/sys/fs/binfmt_misc/qemu-aarch64

# --- 2. rootfs --------------------------------------------------------------------------------------
stage "rootfs: arm64 $SUITE"
if [ -z "${DEBIAN_MIRROR:-}" ]; then
    DEBIAN_MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')
    [ -n "$DEBIAN_MIRROR" ] || DEBIAN_MIRROR=$(awk '$1 == "deb" && $2 ~ /^http/ && $2 ~ /\/debian\/?$/ { print $2; exit }' \
        /etc/apt/sources.list 2>/dev/null || true)
    DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
fi
ROOTFS_KEY=$(printf '%s\n' "$SUITE arm64 minbase $ROOTFS_INCLUDE $DEBIAN_MIRROR" | sha256sum | cut -c1-12)
ROOTFS_TAR=$CACHE/rootfs-$SUITE-arm64-$ROOTFS_KEY.tar
if [ -f "$ROOTFS_TAR" ]; then
    echo "cached: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
else
    echo "debootstrap --arch=arm64 --variant=minbase --include=$ROOTFS_INCLUDE $SUITE ($DEBIAN_MIRROR); a few minutes"
    BOOT=$WORK/debootstrap
    # In a private mount namespace, so that the /proc and /sys debootstrap mounts cannot outlive it.
    unshare --mount --propagation private -- debootstrap --arch=arm64 --variant=minbase \
        --include="$ROOTFS_INCLUDE" "$SUITE" "$BOOT" "$DEBIAN_MIRROR" > "$WORK/debootstrap.log" 2>&1 \
        || { tail -30 "$WORK/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }
    rm -rf "$BOOT"/var/cache/apt/archives/*.deb "$BOOT"/var/lib/apt/lists/*_Packages
    tar --numeric-owner -C "$BOOT" -cf "$ROOTFS_TAR.partial" . && mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
    rm -rf --one-file-system "$BOOT"
    echo "saved: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
fi
R=$WORK/rootfs
mkdir -p "$R"
tar --numeric-owner -C "$R" -xpf "$ROOTFS_TAR"
in_arm "$R" /usr/bin/python3 -c 'import platform, sys, numpy; print(platform.machine(), sys.version.split()[0], "numpy", numpy.__version__)' \
    | tee "$WORK/arm-python.txt"
grep -q "^aarch64 $PYVER\.[0-9]* numpy $DEBIAN_NUMPY\$" "$WORK/arm-python.txt" \
    || fail "the rootfs should run aarch64 python $PYVER with Debian's numpy $DEBIAN_NUMPY"

# --- 3. wheels ----------------------------------------------------------------------------------------
stage "wheels: project wheel + aarch64 cp311 wheels"
copy_tree "$WORK/src"
"$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps "$WORK/src" -w "$WORK/dist" \
    || fail "building the project's wheel failed"
FERLITE_WHL=$(ls "$WORK"/dist/ferlite-*.whl)
echo "built: $(basename "$FERLITE_WHL")"
PLATFORMS=(--platform manylinux2014_aarch64)
for x in $(seq 17 36); do PLATFORMS+=(--platform "manylinux_2_${x}_aarch64"); done
REQS=$("$PYTHON" - "$FERLITE_WHL" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    lines = z.read(meta).decode().splitlines()
print("\n".join(sorted(l for l in lines if l.startswith("Requires-Dist:"))))
EOF
)
WHEELS_KEY=$(printf '%s\n' "$REQS" "${PINS[@]}" "${TEST_REQS[@]}" "${PLATFORMS[*]}" "cp${PYVER/./}" | sha256sum | cut -c1-12)
WHEELS_CACHE=$CACHE/wheels-aarch64-cp${PYVER/./}-$WHEELS_KEY
if [ -d "$WHEELS_CACHE" ]; then
    echo "cached: $WHEELS_CACHE"
else
    echo "pip download (aarch64, cp${PYVER/./}): ferlite[edge] ${PINS[*]} ${TEST_REQS[*]}"
    rm -rf "$WHEELS_CACHE.partial"
    "$PYTHON" -m pip download -q --disable-pip-version-check -d "$WHEELS_CACHE.partial" --only-binary=:all: \
        "${PLATFORMS[@]}" --python-version "$PYVER" --implementation cp --abi "cp${PYVER/./}" \
        "$FERLITE_WHL[edge]" "${PINS[@]}" "${TEST_REQS[@]}" || fail "pip download of the aarch64 wheels failed"
    rm -f "$WHEELS_CACHE.partial"/ferlite-*.whl
    mv "$WHEELS_CACHE.partial" "$WHEELS_CACHE"
fi
ls "$WHEELS_CACHE" | sed 's/^/  /'
ls "$WHEELS_CACHE" | grep -q '^ai_edge_litert-2\.' \
    || fail "no ai-edge-litert 2.x aarch64 wheel (were the manylinux_2_27+ platform tags passed?)"
mkdir -p "$R/tmp/wheels"
cp "$WHEELS_CACHE"/*.whl "$FERLITE_WHL" "$R/tmp/wheels/"
copy_tree "$R/root/ferlite"                     # the repository, for install.sh and the unit beside it
ARM_WHL=/tmp/wheels/$(basename "$FERLITE_WHL")

# --- 4. x86 reference ------------------------------------------------------------------------------
stage "x86 reference: int8 outputs, recognize"
IO=$WORK/io
mkdir -p "$IO"
INT8_MODELS="ferlite_cnn48_w_ferplus_int8 ferlite_cnn48_w_fer2013_int8"  # the bundled classifiers: default (FER+ labels), fer2013
cat > "$IO/int8.py" <<'EOF'
"""The bundled int8 classifiers on fixed inputs, on two machines.

`prepare FACES_DIR N [MODEL]` (x86): faces.npy (N uint8 48x48 faces) and inputs.npy (their int8 input tensors).
`run [MODEL]`: raw int8 outputs on inputs.npy with LiteRT's default kernels (XNNPACK, what ferlite runs),
1 and 2 threads, and with its reference kernels (BUILTIN_REF, first 20); ExpressionClassifier.probabilities on
faces.npy; all saved under the model's file stem and this machine's name. MODEL is a file, or the file name of
one of the installed package's models (default: the default classifier).
`compare A B` (A, B: <model stem>_<machine> tags): raw int8 outputs byte-identical with every kernel set;
float probabilities within 1e-6 (numpy's exp may differ in the last bit between builds) with the same top class."""
import hashlib
import json
import platform
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np

io, mode = Path(__file__).parent, sys.argv[1]


def bundled_model(name: str = "ferlite_cnn48_w_ferplus_int8.tflite") -> Path:
    return Path(name) if Path(name).is_file() else Path(str(files("ferlite.edge") / "models" / name))


if mode == "prepare":
    import cv2

    from ferlite.edge.classification.runtime import load_interpreter

    paths = sorted(Path(sys.argv[2]).glob("*.png"))[: int(sys.argv[3])]
    faces = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img.shape != (48, 48):
            img = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
        faces.append(img)
    faces = np.stack(faces).astype(np.uint8)
    interp, _ = load_interpreter(Path(sys.argv[4]) if len(sys.argv) > 4 else bundled_model())
    d = interp.get_input_details()[0]
    scale, zero = d["quantization"]
    lim = np.iinfo(d["dtype"])
    x = np.clip(np.round(faces.astype(np.float32) / scale + zero), lim.min, lim.max).astype(d["dtype"])
    np.save(io / "faces.npy", faces)
    np.save(io / "inputs.npy", x[..., None])  # (N, 48, 48, 1)
    print(f"{len(faces)} faces from {sys.argv[2]}, input tensors {x[..., None].shape} {x.dtype}")
elif mode == "run":
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    import ferlite.edge
    from ferlite.edge.classification.classifier import ExpressionClassifier
    from ferlite.edge.classification.runtime import load_interpreter

    model = bundled_model(*sys.argv[2:3])
    tag = f"{model.stem}_{platform.machine()}"
    x = np.load(io / "inputs.npy")

    def raw_outputs(interp) -> np.ndarray:
        i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
        out = []
        for t in x:
            interp.set_tensor(i, t[None])
            interp.invoke()
            out.append(interp.get_tensor(o).reshape(-1).copy())  # every output row (one per view: face, mirror, shifts)
        return np.stack(out)

    for threads in (1, 2):
        interp, backend = load_interpreter(model, threads)  # as ferlite loads it: default kernels (XNNPACK)
        np.save(io / f"raw_t{threads}_{tag}.npy", raw_outputs(interp))
    ref = Interpreter(model_path=str(model), num_threads=1, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    x = x[:20]  # the reference kernels take ~1 s a face under qemu: a control, on the first 20
    np.save(io / f"raw_ref_{tag}.npy", raw_outputs(ref))
    clf = ExpressionClassifier(model)
    probs = np.stack([clf.probabilities(f) for f in np.load(io / "faces.npy")]).astype(np.float32)
    np.save(io / f"probs_{tag}.npy", probs)
    meta = {"machine": tag, "backend": backend, "numpy": np.__version__, "ferlite": ferlite.edge.__file__, "model": str(model),
            "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    (io / f"meta_{tag}.json").write_text(json.dumps(meta))
    print(json.dumps(meta))
elif mode == "compare":
    a, b = sys.argv[2], sys.argv[3]
    ma, mb = (json.loads((io / f"meta_{t}.json").read_text()) for t in (a, b))
    ok = ma["model_sha256"] == mb["model_sha256"]
    print(f"model sha256 {ma['model_sha256'][:16]}... on both: {'yes' if ok else 'NO: ' + mb['model_sha256'][:16]}")
    print(f"numpy {ma['numpy']} ({a}) vs {mb['numpy']} ({b})")
    load = lambda name, t: np.load(io / f"{name}_{t}.npy")  # noqa: E731
    for t in (a, b):
        same = load("raw_t1", t).tobytes() == load("raw_t2", t).tobytes()
        ok &= same
        print(f"{t}: 1 vs 2 threads: {'identical' if same else 'DIFFERENT'}")
    for name, what, tol in (
        ("raw_ref", "raw int8, reference kernels (BUILTIN_REF)", 0),
        ("raw_t1", "raw int8, default kernels (XNNPACK), 1 thread", 0),
        ("raw_t2", "raw int8, default kernels (XNNPACK), 2 threads", 0),
        ("probs", "ExpressionClassifier.probabilities (float32)", 1e-6),
    ):
        x, y = load(name, a), load(name, b)
        if x.dtype != y.dtype or x.shape != y.shape:
            print(f"{what}: DIFFERENT shapes or types: {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
            ok = False
            continue
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        n_same, n = int((d == 0).sum()), x.size
        top_same = int((x.argmax(1) == y.argmax(1)).sum())
        if n_same == n:
            verdict = "byte-identical"
        elif d.max() <= tol and top_same == len(x):
            verdict = f"within {tol:g}, same top class"
        else:
            verdict, ok = "DIFFERENT", False
        where = "" if n_same == n else f"; max difference {d.max():g}"
        if verdict == "DIFFERENT":
            where += f" at (face, class) {np.argwhere(d > tol).tolist()[:20]}"
        print(f"{what}: {x.shape}: {n_same}/{n} values identical, top class same {top_same}/{len(x)}: {verdict}{where}")
    print(f"first face, raw int8 (XNNPACK) {a}: {load('raw_t1', a)[0].tolist()}, {b}: {load('raw_t1', b)[0].tolist()}")
    sys.exit(0 if ok else 1)
EOF
# The model from the wheel that aarch64 installs (the repository's copy may change during a run).
mkdir -p "$IO/model"
"$PYTHON" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [open(sys.argv[2] + "/" + n.split("/")[-1], "wb").write(z.read(n)) for n in z.namelist() if n.startswith("ferlite/edge/models/ferlite_cnn48") and "_int8." in n]' "$FERLITE_WHL" "$IO/model"
(cd "$WORK" && "$PYTHON" "$IO/int8.py" prepare "$REPO/tests/data/faces/images" "$N_FACES" "$IO/model/ferlite_cnn48_w_ferplus_int8.tflite") \
    || fail "x86: preparing the input tensors failed"
for M in $INT8_MODELS; do
    (cd "$WORK" && "$PYTHON" "$IO/int8.py" run "$IO/model/$M.tflite") || fail "x86: the int8 classifier run ($M) failed"
done
(cd "$WORK" && "$PYTHON" -m ferlite recognize "$REPO/edge/data/sample.mp4" --out "$WORK/x86-video" --no-show \
    --no-save --max-frames "$FRAMES") || fail "x86: ferlite recognize on the sample clip failed"
cp -r "$IO" "$R/tmp/io"

# --- 5. install (emulated) -------------------------------------------------------------------------
INSTALL=(bash /root/ferlite/systemd/install.sh --no-picamera2 --wheels /tmp/wheels --from "$ARM_WHL")
stage "install.sh (emulated aarch64, offline)"
in_arm "$R" "${INSTALL[@]}" 2>&1 | tee "$WORK/install.log" || fail "install.sh failed inside the arm64 rootfs"

stage "checks after install"
[ -x "$R$VENV/bin/ferlite" ] || fail "$VENV/bin/ferlite is missing"
grep -qE '^include-system-site-packages *= *true' "$R$VENV/pyvenv.cfg" || fail "the venv lacks --system-site-packages"
in_arm "$R" /bin/sh -c "getent passwd ferlite && id -nG ferlite" > "$WORK/user.txt" || fail "no user ferlite"
cat "$WORK/user.txt"
tail -1 "$WORK/user.txt" | tr ' ' '\n' | grep -qx video || fail "user ferlite is not in group video"
cmp "$REPO/systemd/ferlite.service" "$R/etc/systemd/system/ferlite.service" \
    || fail "/etc/systemd/system/ferlite.service differs from systemd/ferlite.service"
[ -x "$R/opt/ferlite/systemd/uninstall.sh" ] || fail "/opt/ferlite/systemd/uninstall.sh is missing"
# The systemd steps: verify and enable run in a chroot as on a Pi; only the start needs a running systemd
# (proof 3 starts the unit under a real systemd).
grep -q "systemd-analyze verify: ok" "$WORK/install.log" || fail "install.sh did not run systemd-analyze verify cleanly"
[ "$(readlink "$R/etc/systemd/system/multi-user.target.wants/ferlite.service")" = /etc/systemd/system/ferlite.service ] \
    || fail "install.sh did not enable ferlite.service (no multi-user.target.wants link)"
grep -q "systemd is not running here" "$WORK/install.log" || fail "install.sh should say it did not start the service"
echo "systemd-analyze verify: ok; enabled (multi-user.target.wants); not started: no running systemd in a chroot"
if [ -f "$REPO/systemd/README.md" ]; then
    cmp "$REPO/systemd/README.md" "$R/opt/ferlite/systemd/README.md" || fail "/opt/ferlite/systemd/README.md (the unit's Documentation=) is missing"
fi
if [ -f "$REPO/edge/data/default.toml" ]; then
    cmp "$REPO/edge/data/default.toml" "$R/etc/ferlite/config.toml" \
        || fail "/etc/ferlite/config.toml is not the packaged default"
    echo "/etc/ferlite/config.toml = edge/data/default.toml"
else
    echo "NOTE: edge/data/default.toml does not exist yet: no config to check"
fi
in_arm "$R" "$VENV/bin/python" -c '
import sys, numpy, cv2, ferlite
from importlib.metadata import version
assert numpy.__file__.startswith("/usr/lib/python3/dist-packages/"), numpy.__file__
assert ferlite.__file__.startswith(sys.prefix), ferlite.__file__
print("numpy", numpy.__version__, "(Debian)", "| opencv", cv2.__version__, "| ai-edge-litert", version("ai-edge-litert"),
      "| ml_dtypes", version("ml_dtypes"), "| ferlite", version("ferlite"))
' || fail "the venv does not use Debian's numpy and the installed ferlite"

stage "install.sh again (idempotent, keeps the config)"
mkdir -p "$R/etc/ferlite"
echo "# local edit by aarch64_proof" >> "$R/etc/ferlite/config.toml"
cp "$R/etc/ferlite/config.toml" "$WORK/config.before"
in_arm "$R" "${INSTALL[@]}" || fail "the second install.sh run failed"
cmp "$WORK/config.before" "$R/etc/ferlite/config.toml" || fail "the second install.sh run changed /etc/ferlite/config.toml"
echo "second run ok; /etc/ferlite/config.toml kept"
[ -f "$REPO/edge/data/default.toml" ] || rm -f "$R/etc/ferlite/config.toml"

# --- 6. tests (emulated) ----------------------------------------------------------------------------
stage "pytest (emulated): edge tests without TensorFlow"
in_arm "$R" "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links /tmp/wheels \
    "${TEST_REQS[@]}" || fail "installing ${TEST_REQS[*]} into the emulated venv failed"
T=$R/root/ferlite-tests
mkdir -p "$T"
cp -r "$REPO/tests" "$REPO/pyproject.toml" "$T/"       # no package folders here: the tests import the installed package
run_tests=()
for t in $TESTS; do
    if [ -f "$REPO/$t" ]; then run_tests+=("$t"); else echo "skipping $t: not in this checkout"; fi
done
[ ${#run_tests[@]} -gt 0 ] || fail "none of the test files exists: $TESTS"
set +e
deselect=()
for d in $DESELECT; do deselect+=(--deselect "$d"); echo "deselected: $d"; done
in_arm "$R" /bin/sh -c 'cd /root/ferlite-tests && exec '"$VENV"'/bin/pytest -p no:cacheprovider -q -ra --durations=5 "$@"' \
    sh "${deselect[@]}" "${run_tests[@]}" 2>&1 | tee "$WORK/pytest.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || fail "pytest inside the emulated venv failed (rc $rc): $(tail -1 "$WORK/pytest.log")"
PYTEST_SUMMARY=$(tail -1 "$WORK/pytest.log" | sed 's/=//g; s/^ *//; s/ *$//')

# --- 7. recognize (emulated) ------------------------------------------------------------------------
stage "ferlite recognize (emulated): sample clip ($FRAMES frames) and photo"
in_arm "$R" "$VENV/bin/ferlite" recognize /root/ferlite/edge/data/sample.mp4 --out /tmp/arm-video --no-show \
    --max-frames "$FRAMES" || fail "ferlite recognize on edge/data/sample.mp4 failed inside the emulated venv"
in_arm "$R" "$VENV/bin/ferlite" recognize --out /tmp/arm-photo --no-show \
    || fail "ferlite recognize on the bundled sample photo failed inside the emulated venv"
ls "$R/tmp/arm-video" | grep -q 'sample\.' || fail "no annotated video written"
RECOGNIZE_SUMMARY=$("$PYTHON" - "$WORK/x86-video/results.csv" "$R/tmp/arm-video/results.csv" "$R/tmp/arm-photo/results.csv" <<'EOF'
import csv, sys
from collections import defaultdict

def rows(path):
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r["x"] != ""]

def iou(a, b):
    ax, ay, aw, ah = a; bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx)); h = max(0, min(ay + ah, by + bh) - max(ay, by))
    u = aw * ah + bw * bh - w * h
    return w * h / u if u else 0.0

x86, arm, photo = rows(sys.argv[1]), rows(sys.argv[2]), rows(sys.argv[3])
box = lambda r: tuple(int(float(r[k])) for k in "xywh")
by_frame = defaultdict(list)
for r in arm:
    by_frame[r["frame"]].append(r)
# The whole-frame search runs at a quarter of the pixels and keeps the faces it is sure of as found there, so
# a face whose score sits at that bar on one architecture is refined at full resolution on the other: the
# same face, a box a few pixels off. So: every face found on both (IoU >= 0.5) and read alike; how many boxes
# are the same to IoU >= 0.9 is reported.
matched = same_box = same_label = 0
for r in x86:
    best = max(by_frame[r["frame"]], key=lambda s: iou(box(r), box(s)), default=None)
    if best is not None and iou(box(r), box(best)) >= 0.5:
        matched += 1
        same_box += iou(box(r), box(best)) >= 0.9
        same_label += best["raw_label"] == r["raw_label"]
frames = len({r["frame"] for r in arm})
print(f"clip: {frames} frames, {len(arm)} faces on aarch64 vs {len(x86)} on x86; {matched}/{len(x86)} x86 faces "
      f"found on aarch64 ({same_box} with IoU>=0.9), same raw label {same_label}/{matched}; photo: {len(photo)} "
      "face(s)" + (f" ({photo[0]['label']} {photo[0]['confidence']})" if photo else ""))
ok = (frames >= 1 and len(photo) >= 1 and len(x86) > 0 and len(arm) == len(x86) and matched == len(x86)
      and same_label >= 0.9 * matched)
sys.exit(0 if ok else 1)
EOF
) || fail "recognize results on aarch64 do not agree with x86: $RECOGNIZE_SUMMARY"
echo "$RECOGNIZE_SUMMARY"

# --- 8. int8 outputs (emulated) ---------------------------------------------------------------------
stage "int8 classifier (emulated) vs x86"
INT8_SUMMARY=""
for M in $INT8_MODELS; do
    in_arm "$R" "$VENV/bin/python" /tmp/io/int8.py run "$M.tflite" \
        || fail "the int8 classifier run ($M) failed inside the emulated venv"
    cp "$R"/tmp/io/*_aarch64.* "$IO/"
    set +e
    SUMMARY=$(cd "$WORK" && "$PYTHON" "$IO/int8.py" compare "${M}_x86_64" "${M}_aarch64" 2>&1)
    rc=$?
    set -e
    SUMMARY=$(echo "$SUMMARY" | sed "s/^/$M: /")
    echo "$SUMMARY"
    INT8_SUMMARY="$INT8_SUMMARY${INT8_SUMMARY:+
}$SUMMARY"
    [ "$rc" = 0 ] || fail "int8 outputs of $M on aarch64 do not match x86 (QEMU_CPU=$CPU): see above"
done

# --- 9. uninstall (emulated) ------------------------------------------------------------------------
stage "uninstall.sh, then uninstall.sh --purge (emulated)"
in_arm "$R" bash /root/ferlite/systemd/uninstall.sh || fail "uninstall.sh failed"
[ ! -e "$R/opt/ferlite" ] || fail "uninstall.sh left /opt/ferlite: $(ls "$R/opt/ferlite")"
[ ! -e "$R/etc/systemd/system/ferlite.service" ] || fail "uninstall.sh left the unit"
! in_arm "$R" /usr/bin/getent passwd ferlite >/dev/null || fail "uninstall.sh left the user ferlite"
[ -d "$R/etc/ferlite" ] || fail "uninstall.sh (without --purge) removed /etc/ferlite"
mkdir -p "$R/var/lib/ferlite" "$R/etc/ferlite"
in_arm "$R" bash /root/ferlite/systemd/uninstall.sh --purge || fail "uninstall.sh --purge failed"
[ ! -e "$R/etc/ferlite" ] && [ ! -e "$R/var/lib/ferlite" ] || fail "uninstall.sh --purge left /etc/ferlite or /var/lib/ferlite"
echo "uninstall ok; --purge ok"

end_stage
printf '\n=== verified (aarch64 under qemu, QEMU_CPU=%s)\n' "$CPU"
echo "  pytest: $PYTEST_SUMMARY"
echo "  recognize: $RECOGNIZE_SUMMARY"
echo "$INT8_SUMMARY" | sed 's/^/  int8: /'
