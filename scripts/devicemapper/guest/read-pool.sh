# Guest task: the compiled cas-migrator (/src/bin) reads the pool in
# /work/docker through dmsetup activation, as on a production host:
#   0. checksums, killed (SIGKILL) while a layer is mounted;
#   1. checksums, interrupted by SIGINT while a layer is mounted (it first
#      removes what the killed run left);
#   2. checksums again (it completes what the first one left);
#   3. plugin-test with its own read-only pool, then with dm.access=auto;
#   4. plugin-test with Docker's pool active, which it uses and leaves active;
#   5. migrate.
# Each step's stdout, stderr and exit code go to /work/out/<step>.{json,stderr,code};
# /work/out/leftovers-<step> lists the devices, loops, mounts and /dev/mapper
# nodes left after it.
set -u
trap 'echo 1 > /tmp/status' EXIT
export HOME=/tmp
# As in a container without udev: nobody makes /dev/mapper nodes but dmsetup itself.
unset DM_DISABLE_UDEV
bin=/src/bin/cas-migrator
root=/work/docker
out=/work/out
mkdir -p "$out"

leftovers() {
  { dmsetup ls | grep -v '^No devices found'; losetup -a; grep -e cas-migrator -e "$root/" /proc/mounts; ls /dev/mapper | grep cas-migrator; } > "$out/leftovers-$1" 2>&1
  return 0
}
step() {
  local name=$1
  shift
  "$bin" "$@" > "$out/$name.json" 2> "$out/$name.stderr"
  echo $? > "$out/$name.code"
  leftovers "$name"
  echo "read-pool: $name exited $(cat "$out/$name.code")"
}

# checksums, sent SIGNAL as soon as one of its thin devices is mounted; the
# step's files as above, and <step>.seen says whether a mount came first.
signal_when_mounted() {
  local name=$1 signal=$2 pid seen=no
  "$bin" checksums --graph "$root" --storage-opt dm.access=dmsetup > "$out/$name.json" 2> "$out/$name.stderr" &
  pid=$!
  for _ in $(seq 600); do
    if grep -q "cas-migrator-dm-$pid-" /proc/mounts; then seen=yes; kill "-$signal" "$pid"; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  wait "$pid"
  echo $? > "$out/$name.code"
  echo "$seen" > "$out/$name.seen"
  leftovers "$name"
  echo "read-pool: $name (a mount seen: $seen) exited $(cat "$out/$name.code")"
}

# 0. SIGKILL: its devices, loops and mount stay.
signal_when_mounted sigkill KILL
# 1. SIGINT (this run first sweeps what the killed one left).
signal_when_mounted sigint INT

# 2, 3.
step checksums checksums --graph "$root" --storage-opt dm.access=dmsetup --json
step plugin-test plugin-test --graph "$root" --storage-driver devicemapper --storage-opt dm.access=dmsetup --json
step plugin-test-auto plugin-test --graph "$root" --storage-driver devicemapper --json --log-level debug

# 4. Docker's pool, active as the daemon left it (here read-only, over read-only loops).
set -- $(stat -c '%d %i' "$root/devicemapper")
pool="docker-$(( ($1 >> 8) & 0xfff )):$(( ($1 & 0xff) | (($1 >> 12) & 0xfff00) ))-$2-pool"
data=$(losetup -f --show -r "$root/devicemapper/devicemapper/data")
metadata=$(losetup -f --show -r "$root/devicemapper/devicemapper/metadata")
blocks=$(( $(stat -c %s "$root/devicemapper/devicemapper/data") / 65536 ))
DM_DISABLE_UDEV=1 dmsetup create "$pool" --table "0 $((blocks * 128)) thin-pool $metadata $data 128 32768 1 read_only"
echo "$pool" > "$out/docker-pool"
step plugin-test-docker-pool plugin-test --graph "$root" --storage-driver devicemapper --storage-opt dm.access=dmsetup --json
DM_DISABLE_UDEV=1 dmsetup remove "$pool"
losetup -d "$data" "$metadata"

# 5.
step migrate migrate --graph "$root" --storage-opt dm.access=dmsetup --json
leftovers end
trap - EXIT
echo 0 > /tmp/status
