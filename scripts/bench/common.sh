# Shared pieces of the benchmark scripts, sourced (not run):
#   . "$root/scripts/bench/common.sh"; bench_init NAME
# Each function says what it sets. Needs bash; callers use set -euo pipefail.

# bench_init NAME: log/die with the script's name; root = the checkout, cd there.
bench_init() {
  bench_name=$1
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  cd "$root"
}
log() { printf '%s: %s\n' "$bench_name" "$*" >&2; }
die() {
  log "$*"
  exit 1
}

# bench_require TOOL...: each must be on PATH.
bench_require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
  done
}

# bench_workdir PREFIX: work = a new scratch directory under build/ (the real
# disk, never tmpfs: O_DIRECT and fio need it), removed on exit by the
# caller's trap (bench_cleanup_work).
bench_workdir() {
  mkdir -p build
  work=$(mktemp -d "$root/build/$1.XXXXXX")
  local fstype
  fstype=$(stat -f -c %T "$work")
  case "$fstype" in
    tmpfs | ramfs) die "$work is on $fstype: the benchmark needs the real disk" ;;
  esac
}

# bench_irq_cpu DIR: the CPU that takes the completion interrupts of DIR's
# disk. A completion interrupt lands on one CPU; a shard pinned elsewhere
# learns of its I/O through a cross-CPU wake-up (an IPI, slow under a
# hypervisor), so the broker's shard goes there when one CPU takes them all (a
# single-queue device such as this VM's virtio disk); a multi-queue device has
# a queue per CPU and any placement is local.
# Sets dev_name, irq_dev, irq_cpus (list or empty) and irq_cpu (one CPU or empty).
bench_irq_cpu() {
  local irq eff
  dev_name=$(basename "$(readlink -f "/sys/dev/block/$(stat -c '%Hd:%Ld' "$1")" 2>/dev/null || echo unknown)")
  [ -e "/sys/block/$dev_name" ] ||
    dev_name=$(basename "$(dirname "$(readlink -f "/sys/class/block/$dev_name" 2>/dev/null || echo /unknown/unknown)")")
  irq_dev=$(basename "$(readlink -f "/sys/block/$dev_name/device" 2>/dev/null || echo unknown)")
  irq_cpu=""
  irq_cpus=""
  # Interrupt lines of the device's request queues (virtioN-req.*, nvmeNq*).
  for irq in $(awk -v d="$irq_dev" '$0 ~ d"-req|"d"q[0-9]" { sub(":", "", $1); print $1 }' /proc/interrupts); do
    eff=$(cat "/proc/irq/$irq/effective_affinity_list" 2>/dev/null || true)
    [ -n "$eff" ] && irq_cpus="$irq_cpus${irq_cpus:+,}$eff"
  done
  case "$irq_cpus" in
    "" | *,* | *-*) ;; # unknown or several CPUs: no single home
    *) irq_cpu=$irq_cpus ;;
  esac
}

# bench_build_release TARGET...: configures the release preset and builds the
# targets into build/release (BENCH_JOBS parallel jobs, default: all CPUs).
bench_build_release() {
  log "building $* (release preset)"
  cmake --preset release >"$work/configure.log" 2>&1 || {
    cat "$work/configure.log" >&2
    die "cmake configure failed"
  }
  cmake --build build/release --target "$@" -j "${BENCH_JOBS:-$(nproc)}" >"$work/build.log" 2>&1 || {
    tail -50 "$work/build.log" >&2
    die "build failed"
  }
}

# bench_fio NAME FILE ARG...: runs fio with JSON output into $work/fio-NAME.json
# and appends "NAME|command" to $work/fio-cmds.txt (for the report).
bench_fio() {
  local name=$1 file=$2
  shift 2
  log "fio $name: fio $*"
  fio --name="$name" --filename="$file" --output-format=json "$@" >"$work/fio-$name.json" 2>"$work/fio-$name.err" || {
    cat "$work/fio-$name.err" "$work/fio-$name.json" >&2
    die "fio $name failed"
  }
  printf '%s|fio --name=%s --filename=FILE %s\n' "$name" "$name" "$*" >>"$work/fio-cmds.txt"
}

# bench_cpu_stat: system-wide CPU jiffies from /proc/stat: busy (without steal), steal, total.
bench_cpu_stat() {
  awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print busy, $9, busy + $5 + $6 + $9 }' /proc/stat
}

# bench_machine DIR: exports CPU_MODEL, MEM, KERNEL, NPROC and DISK (DIR's
# device, file system, mount options, scheduler, write cache) for the report.
bench_machine() {
  local dev fs opts name queue
  CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  KERNEL=$(uname -r)
  NPROC=$(nproc)
  dev=$(df --output=source "$1" | tail -n 1)
  fs=$(df --output=fstype "$1" | tail -n 1)
  opts=$(awk -v d="$dev" '$1 == d { print $4; exit }' /proc/mounts)
  name=$(basename "$(readlink -f "/sys/dev/block/$(stat -c '%Hd:%Ld' "$1" 2>/dev/null || echo 0:0)" 2>/dev/null || echo unknown)")
  queue="/sys/block/$name/queue"
  DISK="$dev ($fs${opts:+ $opts}"
  if [ -d "$queue" ]; then
    DISK="$DISK; $name: scheduler $(sed 's/.*\[\(.*\)\].*/\1/' "$queue/scheduler"), write cache $(cat "$queue/write_cache")"
  fi
  DISK="$DISK)"
  export CPU_MODEL MEM KERNEL NPROC DISK
}
