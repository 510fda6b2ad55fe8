#!/usr/bin/env bash
# Builds the RPM package of ftpgate with rpmbuild, offline, from packaging/rpm/ftpgate.spec:
#
#   packaging/build-rpm.sh          -> target/packages/ftpgate-VERSION-RELEASE.ARCH.rpm
#
# Needs cargo and rpmbuild (on Debian: apt-get install rpm). It packages the same staged tree
# as build-deb.sh (packaging/stage.sh), so both packages hold the same files; the .deb alone
# adds changelog.Debian.gz (the RPM keeps its changelog in the header) and its lintian
# overrides, the .rpm alone its systemd preset (rpm/90-ftpgate.preset: installed disabled).
# Prints the path of the package.
set -euo pipefail
umask 022
# shellcheck source=packaging/common.sh
source "$(dirname "$0")/common.sh"

arch=$(uname -m)
rpm=$outdir/ftpgate-$version-$revision.$arch.rpm
topdir=$(mktemp -d)
trap 'rm -rf "$topdir"' EXIT

rm -f "$rpm"
rpmbuild -bb --quiet \
    --target "$arch" \
    --define "_topdir $topdir" \
    --define "_rpmdir $outdir" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_buildhost reproducible" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    --define "stagedir $stage" \
    --define "presetfile $pkg/rpm/90-ftpgate.preset" \
    --define "ftpgate_version $version" \
    --define "ftpgate_release $revision" \
    "$pkg/rpm/ftpgate.spec" >&2
test -f "$rpm"
echo "$rpm"
