#!/usr/bin/env bash
# Installs what building wsrun's guests (wasm32-wasip2 components) needs, when it is missing.
#
# 1. rustup's own target, the usual route on a connected machine: `rustup target add wasm32-wasip2`.
# 2. Where rustup cannot download it: Debian's Rust 1.96 with std sources, lld's wasm-ld and wasi-libc, with which
#    the build compiles std itself (-Zbuild-std). The host build (host/guest-builder) finds either route.
# Safe to run again: it does nothing when a route is already there.
set -euo pipefail

debian_packages=(rustc-web cargo-web rust-web-src lld-22 wasi-libc)

have_rustup_target() {
    local sysroot
    sysroot=$(rustc --print sysroot 2>/dev/null) || return 1
    [ -d "$sysroot/lib/rustlib/wasm32-wasip2/lib" ]
}

have_debian_route() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ] \
        && [ -f /usr/lib/wasm32-wasi/libc.a ] && compgen -G '/usr/lib/llvm-*/bin/wasm-ld' >/dev/null
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "setup: need root to run: $*" >&2; return 1
    fi
}

if have_rustup_target; then
    echo "setup: using rustup's wasm32-wasip2 target"
    exit 0
fi
if have_debian_route; then
    echo "setup: using Debian's Rust with -Zbuild-std for wasm32-wasip2"
    exit 0
fi
if command -v rustup >/dev/null && timeout 300 rustup target add wasm32-wasip2 && have_rustup_target; then
    echo "setup: installed rustup's wasm32-wasip2 target"
    exit 0
fi
echo "setup: rustup cannot add wasm32-wasip2 here; installing Debian's Rust with std sources instead"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q
as_root apt-get install -y -q "${debian_packages[@]}"
have_debian_route || { echo "setup: the Debian route is still incomplete after installing ${debian_packages[*]}" >&2; exit 1; }
echo "setup: installed ${debian_packages[*]}"
