#!/usr/bin/env bash
# Builds the Debian package of ftpgate with dpkg-deb, offline:
#
#   packaging/build-deb.sh          -> target/packages/ftpgate_VERSION-REVISION_ARCH.deb
#
# Needs cargo, dpkg-deb and dpkg-shlibdeps (apt-get install dpkg-dev). The version comes from
# Cargo.toml, the Debian revision and the file dates from packaging/debian/changelog. Prints
# the path of the package.
set -euo pipefail
umask 022
# shellcheck source=packaging/common.sh
source "$(dirname "$0")/common.sh"

arch=$(dpkg --print-architecture)
deb_version=$version-$revision
deb=$outdir/ftpgate_${deb_version}_${arch}.deb

# Shared-library dependencies of the binary, as dpkg-shlibdeps computes them (it wants a
# debian/control to exist, so it runs in a scratch directory).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/debian"
printf 'Source: ftpgate\n\nPackage: ftpgate\nArchitecture: any\n' >"$scratch/debian/control"
shlibs=$(cd "$scratch" && dpkg-shlibdeps -O -e"$stage/usr/sbin/ftpgate" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
if [ -z "$shlibs" ]; then
    echo "build-deb.sh: dpkg-shlibdeps found no dependencies for the binary" >&2
    exit 1
fi

# The Debian-only files: the changelog (the RPM has it in its header) and lintian overrides.
install -m 0644 /dev/null "$stage/usr/share/doc/ftpgate/changelog.Debian.gz"
gzip -9n <"$pkg/debian/changelog" >"$stage/usr/share/doc/ftpgate/changelog.Debian.gz"
install -D -m 0644 "$pkg/debian/lintian-overrides" "$stage/usr/share/lintian/overrides/ftpgate"
install -d -m 0755 "$stage/DEBIAN"
conffiles=(/etc/ftpgate/ftpgate.json /etc/logrotate.d/ftpgate)
printf '%s\n' "${conffiles[@]}" >"$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$pkg/debian/$script" "$stage/DEBIAN/$script"
done
# md5sums of every file but the conffiles (dpkg records theirs in its status), as dh_md5sums.
(
    cd "$stage"
    find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
        grep -vxF -f <(printf '%s\n' "${conffiles[@]#/}") | xargs -d '\n' md5sum
) >"$stage/DEBIAN/md5sums"
installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$deb_version/" -e "s/@ARCH@/$arch/" \
    -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" \
    "$pkg/debian/control.in" >"$stage/DEBIAN/control"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
