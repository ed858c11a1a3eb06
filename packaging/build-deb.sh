#!/usr/bin/env bash
# build-deb.sh VERSION BINDIR — builds dist/lbd_VERSION_ARCH.deb with dpkg-deb
# from the binaries in BINDIR (made by `make build`).
set -euo pipefail
version=${1:?version}
bindir=${2:?bin dir}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
arch=$(dpkg --print-architecture)
# Debian versions must start with a digit.
case "$version" in [0-9]*) ;; *) version="0.0.0+$version" ;; esac
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

install -D -m 0755 "$bindir/lbd" "$root/usr/sbin/lbd"
install -D -m 0755 "$bindir/lbctl" "$root/usr/bin/lbctl"
install -D -m 0644 "$here/lbd.service" "$root/lib/systemd/system/lbd.service"
install -D -m 0644 "$here/lbd.default" "$root/etc/default/lbd"
install -D -m 0640 "$here/lbd.toml" "$root/etc/lbd/lbd.toml"
install -d "$root/usr/share/doc/lbd"
cp -r "$top/docs/." "$root/usr/share/doc/lbd/"
find "$root/usr/share/doc/lbd" -name '*_test.go' -delete
install -m 0644 "$top/README.md" "$root/usr/share/doc/lbd/README.md"

install -d "$root/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" "$here/debian/control" >"$root/DEBIAN/control"
echo "Installed-Size: $(du -sk "$root" | cut -f1)" >>"$root/DEBIAN/control"
install -m 0644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
install -m 0755 "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" "$root/DEBIAN/"

mkdir -p "$top/dist"
out="$top/dist/lbd_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
