#!/bin/bash
# run-probe.sh: run kvm-probe against a real Debian arm64 kernel.
#
#   run-probe.sh [options] KERNEL     boot KERNEL under qemu-system-aarch64 (TCG)
#   run-probe.sh --host [options]     run on this arm64 host's /dev/kvm
#
# KERNEL is a Debian package name (linux-image-6.12.117+deb13-arm64,
# linux-image-arm64, ...), a .deb file, or a directory a kernel .deb was
# extracted into. See README.md beside this script.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

CPU=max
MODE=
VARIANT=
HOST=0
TIMEOUT=${KVM_PROBE_TIMEOUT:-180}
OUTDIR="$REPO/data/kernel-probe"
WORK=${KVM_PROBE_WORK:-/var/tmp/kvm-probe}
SUITES=(trixie trixie-backports bookworm-backports sid)
SUITES_SET=0
MIRROR=${KVM_PROBE_MIRROR:-http://deb.debian.org/debian}
FORCE=0
KERNEL=

usage() {
	cat <<EOF
usage: $0 [options] KERNEL | $0 --host [options]

  KERNEL            Debian arm64 kernel package name, .deb file, or extracted tree
  --cpu MODEL       QEMU CPU model (default: max); not max gives variant .cpu-MODEL
  --mode MODE       nvhe | vhe | protected. nvhe and protected pass
                    kvm-arm.mode=MODE; vhe passes nothing (the kernel's default
                    mode, VHE where the CPU has it). Default: nvhe with --cpu max,
                    vhe otherwise (as the shared probe files were made)
  --pmu             also probe VM P: a vCPU with PSCI 0.2 and the PMUv3
                    feature (features0 0xc); adds .pmu to the variant
  --variant NAME    override the file name variant (output <release>.NAME.jsonl;
                    --variant '' for none)
  --suite SUITE     Debian suite to search for KERNEL (repeatable; default:
                    ${SUITES[*]})
  --out DIR         where to write the .jsonl (default: $OUTDIR)
  --work DIR        cache and scratch directory (default: $WORK)
  --timeout SECS    per-boot (or per-run with --host) timeout (default: $TIMEOUT)
  --force           overwrite an existing output file
  --host            run the probe on this machine (arm64 with /dev/kvm)
EOF
}

die() { echo "run-probe: $*" >&2; exit 1; }
log() { echo "run-probe: $*" >&2; }

VARIANT_SET=0
PMU=0
while [ $# -gt 0 ]; do
	case "$1" in
	--cpu) CPU=$2; shift 2 ;;
	--mode) MODE=$2; shift 2 ;;
	--pmu) PMU=1; shift ;;
	--variant) VARIANT=$2; VARIANT_SET=1; shift 2 ;;
	--suite)
		[ "$SUITES_SET" = 1 ] || SUITES=()
		SUITES_SET=1; SUITES+=("$2"); shift 2 ;;
	--out) OUTDIR=$2; shift 2 ;;
	--work) WORK=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--force) FORCE=1; shift ;;
	--host) HOST=1; shift ;;
	-h|--help) usage; exit 0 ;;
	-*) usage >&2; die "unknown option $1" ;;
	*) [ -z "$KERNEL" ] || die "only one KERNEL"; KERNEL=$1; shift ;;
	esac
done

mkdir -p "$WORK" "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

# ---- build the probe -------------------------------------------------------
build_probe() { # $1: output binary
	local cc
	if [ "$(uname -m)" = aarch64 ] && command -v gcc >/dev/null; then
		cc=gcc
	else
		cc=aarch64-linux-gnu-gcc
		command -v $cc >/dev/null ||
			die "$cc not found (apt-get install gcc-aarch64-linux-gnu)"
	fi
	$cc -static -O2 -Wall -o "$1" "$HERE/kvm-probe.c"
}

# ---- extract the records from a console log or stdout ----------------------
extract_records() { # $1 log, $2 out
	tr -d '\r' <"$1" | grep -a -E '^\{"t":"[a-z_0-9]+".*\}$' >"$2" || true
	grep -q '^{"t":"done"}$' "$2" || return 1
	grep -q '^{"t":"start",' "$2" || return 1
}

release_of() { # $1 records file
	sed -n 's/^{"t":"start","release":"\([^"]*\)".*/\1/p' "$1" | head -n1
}

save_output() { # $1 records, $2 variant
	local rel name
	rel=$(release_of "$1")
	[ -n "$rel" ] || die "no start record"
	name="$rel${2:+.$2}.jsonl"
	if [ -e "$OUTDIR/$name" ] && [ "$FORCE" != 1 ]; then
		die "$OUTDIR/$name exists (use --force); new result left in $1"
	fi
	cp "$1" "$OUTDIR/$name"
	log "wrote $OUTDIR/$name ($(wc -l <"$OUTDIR/$name") records)"
	echo "$OUTDIR/$name"
}

# ---- host mode ---------------------------------------------------------------
if [ "$HOST" = 1 ]; then
	[ "$(uname -m)" = aarch64 ] || die "--host needs an arm64 machine"
	[ -e /dev/kvm ] || die "no /dev/kvm"
	if [ "$VARIANT_SET" != 1 ]; then
		VARIANT=host
		[ "$PMU" = 1 ] && VARIANT=host.pmu
	fi
	build_probe "$WORK/kvm-probe"
	pmuarg=()
	[ "$PMU" = 1 ] && pmuarg=(--pmu)
	timeout -k 10 "$TIMEOUT" "$WORK/kvm-probe" "${pmuarg[@]}" >"$WORK/host.log" || true
	extract_records "$WORK/host.log" "$WORK/host.jsonl" ||
		die "probe did not finish; output in $WORK/host.log"
	save_output "$WORK/host.jsonl" "$VARIANT"
	exit 0
fi

# ---- QEMU mode -------------------------------------------------------------------
[ -n "$KERNEL" ] || { usage >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (device nodes in the initramfs)"
command -v qemu-system-aarch64 >/dev/null ||
	die "qemu-system-aarch64 not found (apt-get install qemu-system-arm)"
for t in cpio dpkg-deb timeout; do
	command -v $t >/dev/null || die "$t not found"
done

if [ -z "$MODE" ]; then
	if [ "$CPU" = max ]; then MODE=nvhe; else MODE=vhe; fi
fi
case "$MODE" in
nvhe|protected) MODEARG="kvm-arm.mode=$MODE " ;;
vhe) MODEARG= ;;
*) die "unknown --mode $MODE" ;;
esac
if [ "$VARIANT_SET" != 1 ]; then
	# .pmu first, so that the name still ends in .cpu-<model>.jsonl where
	# hcsim's probe replay reads the CPU model from
	parts=()
	[ "$PMU" = 1 ] && parts+=(pmu)
	if [ "$CPU" = max ]; then
		[ "$MODE" = nvhe ] || parts+=("$MODE")
	else
		parts+=("cpu-$CPU")
		[ "$MODE" = vhe ] || parts+=("$MODE")
	fi
	VARIANT=$(IFS=.; echo "${parts[*]}")
fi

# private apt configuration: arm64 package lists of the chosen suites, kept in
# $WORK/apt; the machine's own apt setup is not touched
APTDIR="$WORK/apt"
apt_opts() {
	echo -o Dir::State="$APTDIR/state" -o Dir::State::status="$APTDIR/status" \
		-o Dir::Cache="$APTDIR/cache" -o Dir::Etc::SourceList="$APTDIR/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null -o APT::Architecture=arm64 \
		-o APT::Architectures::=arm64 -o APT::Sandbox::User=root
}
apt_setup() {
	[ -n "${APT_READY:-}" ] && return 0
	mkdir -p "$APTDIR/state/lists/partial" "$APTDIR/cache/archives/partial"
	: >"$APTDIR/status"
	: >"$APTDIR/sources.list.new"
	for s in "${SUITES[@]}"; do
		echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $s main" \
			>>"$APTDIR/sources.list.new"
	done
	mv "$APTDIR/sources.list.new" "$APTDIR/sources.list"
	# shellcheck disable=SC2046
	apt-get $(apt_opts) -q update >&2 || die "apt-get update failed"
	APT_READY=1
}
apt_download() { # $1 package; prints the .deb path
	local d="$WORK/debs" f
	mkdir -p "$d"
	f=$(ls "$d/$1"_*_arm64.deb 2>/dev/null | head -n1 || true)
	if [ -z "$f" ]; then
		apt_setup
		# shellcheck disable=SC2046
		(cd "$d" && apt-get $(apt_opts) -q download "$1" >&2) ||
			die "cannot download $1 from ${SUITES[*]}"
		f=$(ls "$d/$1"_*_arm64.deb | head -n1)
	fi
	echo "$f"
}
deb_depends() { # $1 .deb: kernel packages it depends on
	dpkg-deb -f "$1" Depends 2>/dev/null | tr ',|' '\n\n' |
		sed 's/(.*//; s/ //g' | grep -E '^linux-(image|binary|base)-[0-9]' || true
}

# ---- unpack the kernel -------------------------------------------------------------
# the image is /boot/vmlinuz-REL up to 6.18, /usr/lib/modules/REL/vmlinuz from
# 6.19 on (linux-base-*)
find_image() {
	ls "$TREE"/boot/vmlinuz-* "$TREE"/boot/vmlinux-* "$TREE"/usr/lib/modules/*/vmlinuz \
		"$TREE"/lib/modules/*/vmlinuz 2>/dev/null | head -n1 || true
}
TREE=
case "$KERNEL" in
*.deb)
	[ -f "$KERNEL" ] || die "no such file $KERNEL"
	TREE="$WORK/tree/$(basename "$KERNEL" .deb)"
	debs=("$KERNEL") ;;
*)
	if [ -d "$KERNEL" ]; then
		TREE=$KERNEL
		debs=()
	else
		TREE="$WORK/tree/$KERNEL"
		debs=("$(apt_download "$KERNEL")")
	fi ;;
esac
if [ ${#debs[@]} -gt 0 ]; then
	rm -rf "$TREE"
	mkdir -p "$TREE"
	# meta packages (linux-image-arm64) and split packages (6.19 on:
	# linux-image-* depends on linux-binary-* and linux-base-*, and the image
	# is in one of them) pull in the package that has the image: follow the
	# kernel dependencies until /boot/vmlinuz-* is there
	seen=" "
	i=0
	while [ $i -lt ${#debs[@]} ] && [ $i -lt 8 ]; do
		deb=${debs[$i]}
		i=$((i + 1))
		log "unpacking $(basename "$deb")"
		dpkg-deb -x "$deb" "$TREE"
		if [ -z "$(find_image)" ]; then
			for dep in $(deb_depends "$deb"); do
				case "$seen" in *" $dep "*) continue ;; esac
				seen="$seen$dep "
				# a dependency that is not downloadable (linux-base-* of the
				# 6.19+ backports is in no arm64 package list) is skipped: the
				# image is in linux-binary-*
				if d=$(apt_download "$dep"); then
					debs+=("$d")
				else
					log "skipping $dep (cannot download it)"
				fi
			done
		fi
	done
fi
IMAGE=$(find_image)
[ -n "$IMAGE" ] || die "no /boot/vmlinuz-* or /usr/lib/modules/*/vmlinuz in $TREE"
case "$IMAGE" in
*/boot/*) KREL=$(basename "$IMAGE"); KREL=${KREL#vmlinu?-} ;;
*) KREL=$(basename "$(dirname "$IMAGE")") ;;
esac
log "kernel image $IMAGE (release $KREL)"

# ---- initramfs ----------------------------------------------------------------
B="$WORK/boot/$KREL${VARIANT:+.$VARIANT}"
rm -rf "$B"
mkdir -p "$B/root/dev" "$B/root/proc" "$B/root/sys" "$B/root/modules"
build_probe "$B/root/init"
mknod "$B/root/dev/console" c 5 1
mknod "$B/root/dev/null" c 1 3

# KVM is built in on Debian arm64; if a kernel has it as a module, put kvm.ko
# and its dependencies into /modules, numbered in load order
CONFIG="$TREE/boot/config-$KREL"
[ -f "$CONFIG" ] || CONFIG="$TREE/usr/lib/modules/$KREL/config"
if [ -f "$CONFIG" ] && grep -q '^CONFIG_KVM=m' "$CONFIG"; then
	MODDIR=
	for m in "$TREE/usr/lib/modules/$KREL" "$TREE/lib/modules/$KREL"; do
		[ -d "$m" ] && MODDIR=$m
	done
	[ -n "$MODDIR" ] || die "CONFIG_KVM=m but no modules in $TREE"
	line=$(grep -E '(^|/)kvm\.ko(\.[a-z]+)?:' "$MODDIR/modules.dep" | head -n1)
	[ -n "$line" ] || die "kvm.ko not in modules.dep"
	# modules.dep lists dependencies so that the last one loads first
	mods=()
	for d in ${line#*:}; do mods=("$d" "${mods[@]}"); done
	mods+=("${line%%:*}")
	n=10
	for m in "${mods[@]}"; do
		src="$MODDIR/$m"; base=$(basename "$m"); dst="$B/root/modules/$n-${base%%.ko*}.ko"
		case "$m" in
		*.xz) xz -dc "$src" >"$dst" ;;
		*.zst) zstd -qdc "$src" >"$dst" ;;
		*.gz) gzip -dc "$src" >"$dst" ;;
		*) cp "$src" "$dst" ;;
		esac
		n=$((n + 1))
	done
	log "kvm is modular: ${#mods[@]} module(s) in the initramfs"
fi
(cd "$B/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$B/initrd.cpio"

# ---- boot -------------------------------------------------------------------------
APPEND="console=ttyAMA0 rdinit=/init panic=-1 $MODEARG"
# read by the probe from /proc/cmdline (a dotted name: the kernel takes it for
# a module parameter and does not pass it to init)
[ "$PMU" = 1 ] && APPEND="${APPEND}kvm_probe.pmu=1 "
log "booting $KREL (cpu $CPU, ${MODEARG:-default mode}, timeout ${TIMEOUT}s)"
start=$(date +%s)
set +e
timeout -k 10 "$TIMEOUT" qemu-system-aarch64 \
	-machine virt,virtualization=on,gic-version=3 -cpu "$CPU" -smp 1 -m 1024 \
	-nographic -no-reboot -kernel "$IMAGE" -initrd "$B/initrd.cpio" \
	-append "$APPEND" </dev/null >"$B/console.log" 2>&1
rc=$?
set -e
log "qemu exited with $rc after $(($(date +%s) - start))s; console log $B/console.log"
[ $rc -eq 124 ] && log "boot timed out after ${TIMEOUT}s"
extract_records "$B/console.log" "$B/records.jsonl" ||
	die "no complete probe output (no start/done record); see $B/console.log"
save_output "$B/records.jsonl" "$VARIANT"
