#!/usr/bin/env bash
# `make image`: build a Raspberry Pi OS Lite (arm64) image with fabedge installed, using pi-gen.
#
# Needs: a checkout of pi-gen's arm64 branch in $PIGEN_DIR (default ../pi-gen), and either
# Docker (pi-gen's build-docker.sh) or a Debian host with pi-gen's dependencies
# (see its README: coreutils quilt parted qemu-user-static debootstrap zerofree zip dosfstools
# libarchive-tools libcap2-bin grep rsync xz-utils file git curl bc gpg pigz xxd arch-test), as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
pigen=${PIGEN_DIR:-$src/../pi-gen}

if [ ! -x "$pigen/build.sh" ]; then
	echo "make image: pi-gen not found at $pigen." >&2
	echo "  Get it with: git clone --branch arm64 https://github.com/RPi-Distro/pi-gen \"$pigen\"" >&2
	echo "  (or set PIGEN_DIR), then run 'make image' again." >&2
	exit 2
fi
# The image has no first-boot user wizard (DISABLE_FIRST_BOOT_USER_RENAME=1), so the `lab` user's
# login comes from the builder: an SSH public key (then SSH takes keys only) and/or a password.
# Neither is stored in the repository.
if [ -z "${PUBKEY_SSH_FIRST_USER:-}" ] && [ -z "${FIRST_USER_PASS:-}" ]; then
	echo "make image: the 'lab' user needs a way to log in; set one (or both) of" >&2
	echo "  PUBKEY_SSH_FIRST_USER=\"\$(cat ~/.ssh/id_ed25519.pub)\"   (SSH with this key only), or" >&2
	echo "  FIRST_USER_PASS='a long password'                     (SSH and console with a password)" >&2
	echo "  e.g. PUBKEY_SSH_FIRST_USER=\"\$(cat ~/.ssh/id_ed25519.pub)\" make image" >&2
	exit 2
fi
rm -rf "$pigen/stage-fabedge"
cp -r "$here/stage-fabedge" "$pigen/stage-fabedge"
cp "$here/config" "$pigen/config"
{
	echo "# first-user login from make image's environment (docs/install.md)"
	[ -z "${FIRST_USER_PASS:-}" ] || printf 'FIRST_USER_PASS=%q\n' "$FIRST_USER_PASS"
	if [ -n "${PUBKEY_SSH_FIRST_USER:-}" ]; then
		printf 'PUBKEY_SSH_FIRST_USER=%q\n' "$PUBKEY_SSH_FIRST_USER"
		[ -n "${FIRST_USER_PASS:-}" ] || echo "PUBKEY_ONLY_SSH=1"
	fi
} >>"$pigen/config"
# The source travels inside the stage (pi-gen's Docker build sees only its own tree).
install -d "$pigen/stage-fabedge/01-fabedge/files"
tar -C "$src" --exclude=.git --exclude=.venv --exclude=.cache --exclude=bench/out --exclude='bench/.venv-*' \
	-cf "$pigen/stage-fabedge/01-fabedge/files/fabedge-src.tar" .
cd "$pigen"
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	exec ./build-docker.sh
elif [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null 2>&1 \
		&& { [ "$(uname -m)" = aarch64 ] || command -v qemu-aarch64-static >/dev/null 2>&1; }; then
	exec ./build.sh
else
	echo "make image: pi-gen needs Docker, or root on a Debian host with debootstrap and qemu-user-static" >&2
	echo "  (apt-get install debootstrap qemu-user-static binfmt-support ...; see pi-gen's README)." >&2
	exit 2
fi
