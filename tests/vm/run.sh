#!/bin/bash
# Boot a Debian kernel under qemu (TCG, never KVM) with an initramfs holding
# busybox, kernel modules, berth and test binaries; run every scenario and
# report one RESULT line per scenario. Fails on any failure or a timeout.
#
# Environment:
#   VM_DIR      work dir (default build/vm)
#   VM_BINS     static binaries to copy into /tests (space separated)
#   VM_MODULES  kernel modules to insmod at boot, dependencies first added
#   VM_TIMEOUT  seconds for the whole boot (default 170)
#   VM_ONLY     run only scenarios whose name contains this text
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
vm_dir=${VM_DIR:-$top/build/vm}
timeout_s=${VM_TIMEOUT:-170}
modules=${VM_MODULES:-veth macvlan ipvlan overlay bridge 8021q}
mkdir -p "$vm_dir"

# 1. The kernel: the package linux-image-amd64 depends on, unpacked once.
if ! compgen -G "$vm_dir/kernel/boot/vmlinuz-*" >/dev/null; then
    find_pkg() {
        apt-cache depends linux-image-amd64 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1
    }
    pkg=$(find_pkg)
    # A fresh machine may have no package lists yet.
    [ -n "$pkg" ] || { apt-get update -q >&2 && pkg=$(find_pkg); }
    [ -n "$pkg" ] || { echo "vmtest: cannot find the kernel package behind linux-image-amd64" >&2; exit 1; }
    mkdir -p "$vm_dir/deb"
    rm -f "$vm_dir"/deb/*.deb
    (cd "$vm_dir/deb" && apt-get download "$pkg")
    rm -rf "$vm_dir/kernel"
    dpkg-deb -x "$vm_dir"/deb/*.deb "$vm_dir/kernel"
fi
set -- "$vm_dir"/kernel/boot/vmlinuz-*
vmlinuz=$1
kver=${vmlinuz##*/vmlinuz-}
moddir=$vm_dir/kernel/lib/modules/$kver

# 2. The initramfs tree.
root=$vm_dir/root
rm -rf "$root"
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/run" \
    "$root/lib/modules" "$root/scenarios" "$root/tests" "$root/etc"
cp /bin/busybox "$root/bin/busybox"
cp "$top/tests/vm/init" "$root/init"
cp "$top/tests/vm/lib.sh" "$root/lib/vmtest.sh"
chmod 755 "$root/init"
# The kernel opens /dev/console before init runs; devtmpfs is not mounted yet.
mknod "$root/dev/console" c 5 1
for s in "$top"/tests/vm/scenarios/*; do
    [ -x "$s" ] || continue
    case "$(basename "$s")" in *"${VM_ONLY:-}"*) cp "$s" "$root/scenarios/" ;; esac
done
for b in ${VM_BINS:-}; do
    cp "$b" "$root/tests/$(basename "$b" | sed 's/-[0-9a-f]\{16\}$//')"
done

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
echo "vmtest: booting $kver ($(find "$root/scenarios" -type f | wc -l) scenarios, timeout ${timeout_s}s)"
set +e
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -nographic -no-reboot -m 1G -smp 2 \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3" </dev/null >"$log" 2>&1
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
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && grep -q '^VM DONE' "$log.txt"
