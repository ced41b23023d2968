#!/usr/bin/env bash
# Build-only ROCm toolchain, without installing ROCm: what `tvm.compile` for {"kind": "rocm"}
# needs besides TVM itself, arranged as a ROCM_PATH layout in a project-local folder:
#
#   DEST/amdgcn/bitcode/   AMD device libraries (ocml, oclc_*) from Debian's rocm-device-libs
#   DEST/llvm/bin/ld.lld   LLVM 22's linker (TVM 0.27 emits code object v6; lld <= 16 rejects it
#                          with "unknown abi version")
#
# Debian bookworm has neither an lld that new nor a recent device-libs, so both come from
# Debian trixie's packages: downloaded with apt-get into a private apt state (the machine's
# apt configuration is not touched; no root needed) and unpacked with dpkg-deb.  trixie's
# lld needs trixie's glibc, which is unpacked too: ld.lld is a wrapper that runs lld through
# that glibc's loader.
#
# Usage: scripts/setup_rocm_toolchain.sh [DEST]   (default: .toolchains/rocm; idempotent)
# Then: ROCM_PATH=DEST and DEST/llvm/bin on PATH (intelligen_tvm.targets.rocm_toolchain.activate).
# DEBIAN_MIRROR overrides the Debian archive URI (default: the one this machine's apt uses).
set -euo pipefail

root_dir="$(cd "$(dirname "$0")/.." && pwd)"
dest="$(mkdir -p "${1:-$root_dir/.toolchains/rocm}" && cd "${1:-$root_dir/.toolchains/rocm}" && pwd)"
suite="trixie"
packages=(lld-22 rocm-device-libs-17)

ready() {
    [ -f "$dest/amdgcn/bitcode/ocml.bc" ] && "$dest/llvm/bin/ld.lld" --version 2>/dev/null | grep -q "LLD 22"
}

if ready; then
    echo "ROCm toolchain ready: $dest"
    exit 0
fi

for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "setup_rocm_toolchain: $tool not found (Debian/Ubuntu only)" >&2; exit 1; }
done
if [ "$(dpkg --print-architecture)" != "amd64" ]; then
    echo "setup_rocm_toolchain: only amd64 hosts are supported" >&2
    exit 1
fi

# The Debian archive this machine already uses (deb822 or one-line sources).
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
fi
if [ -z "$mirror" ]; then
    mirror="$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' \
        /etc/apt/sources.list 2>/dev/null | head -n 1)"
fi
[ -n "$mirror" ] || { echo "setup_rocm_toolchain: no Debian archive found; set DEBIAN_MIRROR" >&2; exit 1; }

apt_dir="$dest/.apt"
rm -rf "$apt_dir" "$dest/root"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$dest/root"
: > "$apt_dir/status"   # nothing installed: apt resolves the whole dependency closure
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" > "$apt_dir/sources.list"
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::State::status=$apt_dir/status" -o "Debug::NoLocking=1"
    -o "APT::Install-Recommends=0" -o "APT::Sandbox::User=root" -o "Acquire::Languages=none"
)
apt-get "${apt_opts[@]}" -qq update
apt-get "${apt_opts[@]}" -qq -y install --download-only "${packages[@]}" >/dev/null
for deb in "$apt_dir"/cache/archives/*.deb; do
    dpkg-deb -x "$deb" "$dest/root"
done
rm -rf "$apt_dir"

bitcode="$(cd "$dest/root" && find usr/lib -type d -path '*/amdgcn/bitcode' | head -n 1)"
[ -n "$bitcode" ] || { echo "setup_rocm_toolchain: no amdgcn bitcode in ${packages[*]}" >&2; exit 1; }
mkdir -p "$dest/amdgcn" "$dest/llvm/bin"
ln -sfn "../root/$bitcode" "$dest/amdgcn/bitcode"

cat > "$dest/llvm/bin/ld.lld" <<'WRAPPER'
#!/bin/sh
# lld 22 from Debian trixie, run through trixie's own glibc (see setup_rocm_toolchain.sh).
top="$(cd "$(dirname "$0")/../.." && pwd)"
lib="$top/root/usr/lib/x86_64-linux-gnu"
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" --argv0 ld.lld "$top/root/usr/lib/llvm-22/bin/lld" "$@"
WRAPPER
chmod +x "$dest/llvm/bin/ld.lld"

if ! ready; then
    echo "setup_rocm_toolchain: the unpacked toolchain does not run:" >&2
    "$dest/llvm/bin/ld.lld" --version >&2 || true
    exit 1
fi
echo "ROCm toolchain ready: $dest ($("$dest/llvm/bin/ld.lld" --version))"
