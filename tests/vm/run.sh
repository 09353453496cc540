#!/bin/bash
# Boot a Debian kernel under qemu (TCG, never KVM) with an initramfs holding
# busybox, kernel modules, berth and test binaries; run every scenario and
# report one RESULT line per scenario. Fails on any failure or a timeout.
#
# Environment:
#   VM_ARCH       Debian architecture of the kernel: amd64 (default), arm64
#                 (qemu -M virt), armhf (-M virt, armmp kernel) or mipsel
#                 (-M malta, 4kc-malta kernel). VM_BINS must be built for it.
#   VM_DIR        work dir (default build/vm)
#   VM_BINS       static binaries to copy into /tests (space separated)
#   VM_MODULES    kernel modules to insmod at boot, dependencies first added
#   VM_TIMEOUT    seconds for the whole boot (default 170)
#   VM_ONLY       run only scenarios whose name contains this text
#   VM_SCENARIOS  run only these scenarios (space separated names)
#   VM_EXTRA      scenario files from elsewhere to run too (space separated)
#   VM_FILES      files to copy into the VM's /files (space separated)
#   VM_SCENARIO_TIMEOUT  seconds per scenario (default 60)
#   VM_KERNEL_DIR where the kernel is unpacked (default VM_DIR), to share it
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
arch=${VM_ARCH:-amd64}
vm_dir=${VM_DIR:-$top/build/vm}
timeout_s=${VM_TIMEOUT:-170}
modules=${VM_MODULES:-veth macvlan ipvlan overlay bridge 8021q}
kernel_dir=${VM_KERNEL_DIR:-$vm_dir}
mkdir -p "$vm_dir" "$kernel_dir"

# The machine per architecture: the kernel metapackage, qemu and its console.
case "$arch" in
    amd64)
        meta=linux-image-amd64 console=ttyS0
        qemu=(qemu-system-x86_64 -accel tcg -m 1G -smp 2) ;;
    arm64)
        meta=linux-image-arm64 console=ttyAMA0
        qemu=(qemu-system-aarch64 -accel tcg -M virt -cpu cortex-a57 -m 1G -smp 2) ;;
    armhf)
        meta=linux-image-armmp console=ttyAMA0
        # highmem=off: the armmp kernel (no LPAE) reaches no RAM above 4 GiB
        # shellcheck disable=SC2054 # the comma is qemu's, inside one argument
        qemu=(qemu-system-arm -accel tcg -M virt,highmem=off -cpu cortex-a15 -m 1G -smp 2) ;;
    mipsel)
        meta=linux-image-4kc-malta console=ttyS0
        # Malta maps 256 MiB of low memory; the 4kc kernel is uniprocessor.
        qemu=(qemu-system-mipsel -accel tcg -M malta -m 256M -vga none) ;;
    *) echo "vmtest: VM_ARCH $arch is not amd64, arm64, armhf or mipsel" >&2; exit 2 ;;
esac

# fetch_debs ARCH CMD...: run CMD in $kernel_dir/deb with ARCH's package lists.
# A foreign architecture is added to dpkg only for the download and removed
# again after it, and only if this script added it: one the machine already
# had stays.
fetch_debs() {
    local a=$1 added="" rc=0
    shift
    if [ "$a" != "$(dpkg --print-architecture)" ] &&
        ! dpkg --print-foreign-architectures | grep -qx "$a"; then
        dpkg --add-architecture "$a"
        added=$a
        apt-get -o DPkg::Lock::Timeout=600 update -q >&2 || rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
        (cd "$kernel_dir/deb" && "$@") || rc=$?
    fi
    if [ -n "$added" ]; then
        dpkg --remove-architecture "$added"
    fi
    return "$rc"
}

find_pkg() {
    apt-cache depends "$meta:$arch" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*$/\1/p' | head -n 1
}

download() {
    local pkg
    pkg=$(find_pkg)
    # A fresh machine may have no package lists yet.
    [ -n "$pkg" ] || { apt-get -o DPkg::Lock::Timeout=600 update -q >&2 && pkg=$(find_pkg); }
    [ -n "$pkg" ] || { echo "vmtest: cannot find the kernel package behind $meta:$arch" >&2; return 1; }
    apt-get download "$pkg:$arch"
    [ "$arch" = amd64 ] || apt-get download "busybox-static:$arch"
}

# 1. The kernel (and for a foreign architecture its busybox), unpacked once.
if ! compgen -G "$kernel_dir/kernel/boot/vmlinu*" >/dev/null; then
    mkdir -p "$kernel_dir/deb"
    rm -f "$kernel_dir"/deb/*.deb
    fetch_debs "$arch" download
    # arm64 kernels run 32-bit ARM binaries too: seccomp-abi checks that the
    # filter kills one (another AUDIT_ARCH, other numbers).
    if [ "$arch" = arm64 ]; then
        fetch_debs armhf apt-get download busybox-static:armhf
        mkdir -p "$kernel_dir/deb/compat"
        mv "$kernel_dir"/deb/busybox-static_*_armhf.deb "$kernel_dir/deb/compat/"
    fi
    rm -rf "$kernel_dir/kernel" "$kernel_dir/busybox" "$kernel_dir/compat"
    if [ -d "$kernel_dir/deb/compat" ]; then
        dpkg-deb -x "$kernel_dir"/deb/compat/*.deb "$kernel_dir/compat"
        rm -rf "$kernel_dir/deb/compat"
    fi
    for deb in "$kernel_dir"/deb/*.deb; do
        case "$deb" in
            */busybox-static_*) dpkg-deb -x "$deb" "$kernel_dir/busybox" ;;
            *) dpkg-deb -x "$deb" "$kernel_dir/kernel" ;;
        esac
    done
fi
set -- "$kernel_dir"/kernel/boot/vmlinu*
vmlinuz=$1
kver=${vmlinuz##*/vmlinu[xz]-}
moddir=$kernel_dir/kernel/lib/modules/$kver
busybox=/bin/busybox
[ "$arch" = amd64 ] || busybox=$kernel_dir/busybox/bin/busybox

# 2. The initramfs tree.
root=$vm_dir/root
rm -rf "$root"
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/run" \
    "$root/lib/modules" "$root/scenarios" "$root/tests" "$root/etc"
cp "$busybox" "$root/bin/busybox"
cp "$top/tests/vm/init" "$root/init"
cp "$top/tests/vm/lib.sh" "$root/lib/vmtest.sh"
chmod 755 "$root/init"
# The kernel opens /dev/console before init runs; devtmpfs is not mounted yet.
mknod "$root/dev/console" c 5 1
for s in "$top"/tests/vm/scenarios/*; do
    [ -x "$s" ] || continue
    n=$(basename "$s")
    if [ -n "${VM_SCENARIOS:-}" ]; then
        case " $VM_SCENARIOS " in *" $n "*) ;; *) continue ;; esac
    fi
    case "$n" in *"${VM_ONLY:-}"*) cp "$s" "$root/scenarios/" ;; esac
done
for s in ${VM_EXTRA:-}; do cp "$s" "$root/scenarios/"; done
if [ -n "${VM_FILES:-}" ]; then
    mkdir -p "$root/files"
    # shellcheck disable=SC2086 # a list of paths without spaces
    cp $VM_FILES "$root/files/"
fi
echo "SCENARIO_TIMEOUT=${VM_SCENARIO_TIMEOUT:-60}" > "$root/etc/vmtest.env"
# Debug info is most of a debug test binary and the initramfs lives in RAM:
# copies go in without it, and on Malta (256 MiB) without symbols too.
strip=--strip-debug
[ "$arch" != mipsel ] || strip=--strip-all
sysroot=$(rustc --print sysroot)
objcopy=$sysroot/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-objcopy
for b in ${VM_BINS:-}; do
    dest=$root/tests/$(basename "$b" | sed 's/-[0-9a-f]\{16\}$//')
    LD_LIBRARY_PATH="$sysroot/lib" "$objcopy" "$strip" "$b" "$dest"
done
if [ -e "$kernel_dir/compat/bin/busybox" ]; then
    cp "$kernel_dir/compat/bin/busybox" "$root/tests/compat-busybox"
fi

# Modules with their dependencies (read from each .ko's modinfo), deps first.
loaded=""
add_module() {
    local ko dep
    case " $loaded " in *" $1 "*) return 0 ;; esac
    ko=$(find "$moddir" -name "$1.ko" | head -n 1)
    if [ -z "$ko" ]; then
        if grep -q "/$1.ko\$" "$moddir/modules.builtin"; then return 0; fi
        echo "vmtest: module $1 not in $kver" >&2
        return 1
    fi
    for dep in $(grep -a -o 'depends=[a-z0-9_,-]*' "$ko" | head -n 1 | sed 's/depends=//; s/,/ /g'); do
        add_module "$dep"
    done
    cp "$ko" "$root/lib/modules/"
    loaded="$loaded $1"
    echo "$1" >> "$root/lib/modules/load.list"
}
: > "$root/lib/modules/load.list"
for m in $modules; do add_module "$m"; done

initrd=$vm_dir/initramfs.cpio.gz
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$initrd"

# 3. Boot. -no-reboot turns the final poweroff (or a panic) into an exit.
log=$vm_dir/console.log
echo "vmtest: booting $kver on $arch ($(find "$root/scenarios" -type f | wc -l) scenarios, timeout ${timeout_s}s)"
set +e
start=$(date +%s)
timeout "$timeout_s" "${qemu[@]}" -nographic -no-reboot -nic none \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=$console panic=-1 quiet loglevel=3" </dev/null >"$log" 2>&1
rc=$?
set -e
tr -d '\r' < "$log" > "$log.txt"

# 4. Results: one RESULT line per scenario; a missing one is a failure.
pass=0
fail=0
for s in "$root"/scenarios/*; do
    [ -e "$s" ] || continue
    n=$(basename "$s")
    line=$(grep "^RESULT $n " "$log.txt" | tail -n 1 || true)
    case "$line" in
        "RESULT $n PASS") pass=$((pass + 1)); echo "PASS $n" ;;
        "RESULT $n FAIL") fail=$((fail + 1)); echo "FAIL $n" ;;
        *) fail=$((fail + 1)); echo "FAIL $n (no result: timeout or crash)" ;;
    esac
done
if [ "$fail" -ne 0 ] || ! grep -q '^VM DONE' "$log.txt"; then
    echo "---- console ($log.txt) ----"
    cat "$log.txt"
    [ "$rc" -eq 124 ] && echo "vmtest: qemu timed out after ${timeout_s}s"
fi
echo "vmtest: $arch: $(( $(date +%s) - start ))s in qemu"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && grep -q '^VM DONE' "$log.txt"
