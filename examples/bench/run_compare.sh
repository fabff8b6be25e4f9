#!/bin/sh
# libsae vs PyTorch CPU vs the BLAS roofline, same machine, same run (issue 7).
#
#   examples/bench/run_compare.sh [-b BUILD_DIR] [-t THREADS] [-s STEP_SCALE]
#                                 [-c "tiny medium large"] [-a "relu topk batchtopk"]
#                                 [-r REPEATS] [-o LOG] [-G] [-T] [-W TRAINED] [-R RUN] [-M]
#
# Runs, for every configuration and architecture, libsae's bench_train and
# sae_step_rate, torch_ref.py and (once per configuration) bench_sgemm; then the generator comparison (bench_toy vs
# torch_ref.py --mode gen) and the 1-vs-2-thread scaling on medium (bench_train, and
# sae_step_rate over 40 steps without generation, which is steadier).
# Prints one table of samples/s with the ratio libsae/torch per configuration.
# -G skips the generator part, -T the thread-scaling part. Every raw line goes to LOG.
# -W adds, per configuration, a ReLU row "relu+TRAINED" timed after TRAINED untimed training
# steps on both sides (libsae and PyTorch): the state training brings a ReLU SAE to, whose
# codes are sparse (libsae then decodes and differentiates on them; PyTorch's loop is dense).
# -R adds a ReLU row "relu~RUN": a training run from initialisation on both sides
# (sae_step_rate and torch_ref.py), RUN steps timed after the first (which allocates), so
# that the dense first steps and the sparse later ones count as a user's run meets them.
# PyTorch allocates its activations and gradients anew every step; glibc serves blocks over
# 32 MB with mmap and unmaps them when freed, so every step page-faults them in again (a
# third of PyTorch's medium step on a VM with costly page faults). Its runs therefore get
# GLIBC_TUNABLES that keep freed memory in the heap (PyTorch at its best, the stricter
# comparison); -M leaves glibc's defaults (what a user gets without tuning).
# -r runs each libsae/PyTorch pair (and each 1-/2-thread pair) REPEATS times, alternating,
# and the table takes the best run of each program: on a shared machine the best run is the
# least disturbed one, and alternating exposes both programs to the same disturbances.
#
# Threads: OPENBLAS_NUM_THREADS and OMP_NUM_THREADS are set to THREADS for every
# program (Debian's torch uses the system OpenBLAS, whose pool torch.set_num_threads
# does not size), except in the thread-scaling part: there OPENBLAS_NUM_THREADS=1 and
# libsae runs its products on the trainer's own threads (docs/threading.md).
# OPENBLAS_CORETYPE and OMP_WAIT_POLICY are left as the environment sets them.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$root/build"
threads=1
scale=1
configs="tiny medium large"
archs="relu topk batchtopk"
log=""
do_gen=1
do_threads=1
repeats=1
trained=0
run=0
python=/usr/bin/python3
torch_malloc="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"

while getopts b:t:s:c:a:r:o:W:R:GTM opt; do
    case $opt in
    b) build=$(cd "$OPTARG" && pwd) ;;
    t) threads=$OPTARG ;;
    s) scale=$OPTARG ;;
    c) configs=$OPTARG ;;
    a) archs=$OPTARG ;;
    r) repeats=$OPTARG ;;
    o) log=$OPTARG ;;
    W) trained=$OPTARG ;;
    R) run=$OPTARG ;;
    G) do_gen=0 ;;
    T) do_threads=0 ;;
    M) torch_malloc="" ;;
    *) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 2 ;;
    esac
done
[ -n "$log" ] || log=$(mktemp /tmp/sae_compare.XXXXXX)
: >"$log"

bench_train="$build/examples/bench_train"
bench_toy="$build/examples/bench_toy"
bench_sgemm="$build/examples/bench_sgemm"
step_rate="$build/examples/sae_step_rate"
for exe in "$bench_sgemm"; do
    [ -x "$exe" ] || { echo "missing $exe: build with -DSAE_BUILD_EXAMPLES=ON" >&2; exit 1; }
done

# Configuration table: name d N latents batch fire_prob steps (steps scaled by -s), the
# same as examples/bench_train.c (which also uses l1_coefficient 0.01 and k = 8); PyTorch
# trains with libsae's default learning rate, 1e-3, so that -W rows reach the same state.
config_line() {
    case $1 in
    tiny) echo "32 64 128 1024 0.05 400" ;;
    medium) echo "256 1024 4096 4096 0.01 12" ;;
    large) echo "768 8192 16384 4096 0.002 4" ;;
    *) echo "unknown configuration $1" >&2; exit 2 ;;
    esac
}

scaled_steps() {
    awk -v s="$1" -v f="$scale" 'BEGIN { n = int(s * f + 0.5); print (n < 1 ? 1 : n) }'
}

# Run a command with the thread settings, tag each output line, keep everything in LOG.
run_tagged() {
    tag=$1; nthreads=$2; shift 2
    echo "# $tag: $*" >>"$log"
    OPENBLAS_NUM_THREADS=${blas_threads:-$nthreads} OMP_NUM_THREADS=$nthreads "$@" 2>&1 \
        | sed "s/^/$tag /" | tee -a "$log" >/dev/null || true
}

torch_env="env${torch_malloc:+ GLIBC_TUNABLES=$torch_malloc}"
echo "# PyTorch runs: $torch_env" | tee -a "$log"
echo "# $(date -u '+%Y-%m-%dT%H:%M:%SZ') $(uname -n) load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
echo "# threads=$threads OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(unset)} other OPENBLAS_*: $(env | grep '^OPENBLAS_' | grep -v CORETYPE | tr '\n' ' ')" | tee -a "$log"

for cfg in $configs; do
    set -- $(config_line "$cfg")
    d=$1 n_feat=$2 latents=$3 batch=$4 prob=$5 steps=$(scaled_steps "$6")
    echo "# $cfg: d=$d N=$n_feat L=$latents batch=$batch fire_prob=$prob steps=$steps" | tee -a "$log"
    run_tagged "roof:$cfg" "$threads" "$bench_sgemm" --config "$cfg" --threads "$threads" --min-time 0.2
    rows=$archs
    [ "$trained" -gt 0 ] && rows="$rows relu+$trained"
    [ "$run" -gt 0 ] && rows="$rows relu~$run"
    for row in $rows; do
        arch=${row%%[+~]*}
        done_steps=0 row_steps=$steps whole_run=0
        case $row in
        *+*) done_steps=$trained ;;
        *~*) row_steps=$run whole_run=1 ;;
        esac
        if [ -x "$bench_train" ] && [ "$whole_run" = 0 ]; then
            run_tagged "sae:$cfg:$row" "$threads" "$bench_train" "$cfg-$arch" "$scale" "$threads" \
                1 "$done_steps"
        fi
        for rep in $(seq "$repeats"); do
            if [ -x "$step_rate" ]; then
                run_tagged "step:$cfg:$row@$rep" "$threads" "$step_rate" "$cfg" "$arch" "$row_steps" \
                    "$threads" "$done_steps"
            fi
            run_tagged "torch:$cfg:$row@$rep" "$threads" $torch_env "$python" "$here/torch_ref.py" \
                --arch "$arch" --d "$d" --n-features "$n_feat" --latents "$latents" \
                --batch "$batch" --fire-prob "$prob" --l1 0.01 --lr 1e-3 --steps "$row_steps" \
                --warmup $((done_steps + 1)) --threads "$threads"
        done
    done
done

if [ "$do_gen" = 1 ]; then
    # Generator configurations of issue 3: ~8 and ~16 active features per sample.
    # bench_toy prints its own table (all cases, 1 and 2 threads); compare_table.py picks
    # the Bernoulli/uniform, x-only rows at THREADS threads.
    if [ -x "$bench_toy" ]; then
        run_tagged "saetoy" "$threads" "$bench_toy" 1
    fi
    for spec in "256 1024 0.0078125" "768 8192 0.001953125"; do
        set -- $spec
        run_tagged "torch:gen:d$1N$2" "$threads" $torch_env "$python" "$here/torch_ref.py" --mode gen \
            --d "$1" --n-features "$2" --fire-prob "$3" --batch 4096 \
            --steps "$(scaled_steps 10)" --threads "$threads"
    done
fi

if [ "$do_threads" = 1 ] && [ -x "$bench_train" ]; then
    # one-thread BLAS: libsae splits the products over the trainer's threads; 1 and 2
    # threads back to back per architecture (the machine's load changes less in between)
    blas_threads=1
    for arch in $archs; do
        for rep in $(seq "$repeats"); do
            for nt in 1 2; do
                run_tagged "thr$nt:medium:$arch@$rep" "$nt" "$bench_train" "medium-$arch" \
                    "$scale" "$nt"
            done
            # the same steps timed over more of them (bench_train times twelve)
            if [ -x "$step_rate" ]; then
                for nt in 1 2; do
                    run_tagged "thrstep$nt:medium:$arch@$rep" "$nt" "$step_rate" medium "$arch" \
                        "$(scaled_steps 40)" "$nt"
                done
            fi
        done
    done
    blas_threads=
fi

echo "# raw log: $log"
"$python" "$here/compare_table.py" "$log" "$threads"
