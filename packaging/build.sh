#!/usr/bin/env bash
# Builds the .deb and the .rpm into target/packages/. Installs cargo-deb and cargo-generate-rpm
# from crates.io when they are missing.
#
# The binary links glibc dynamically (Rust's usual target): a static musl build would need the
# musl target from rustup, which this build environment cannot fetch; the glibc binary runs on
# the glibc of the build host or newer (Debian 12, Ubuntu 22.04, RHEL 9 and later here).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --quiet cargo-deb
command -v cargo-generate-rpm >/dev/null || cargo install --quiet cargo-generate-rpm
cargo build --release --quiet
mkdir -p target/packages
cargo deb --no-build --no-strip --output target/packages/ >/dev/null
# gzip payload: older RHEL/CentOS rpm cannot read zstd.
cargo generate-rpm --payload-compress gzip --output target/packages/ >/dev/null
ls target/packages/
