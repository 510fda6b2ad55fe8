# shellcheck shell=bash disable=SC2034
# Sourced by build-deb.sh and build-rpm.sh: builds the binary, finds the version, checks the
# license file against Cargo.lock, and stages the package tree (stage.sh).
# Sets: top, version (Cargo.toml), revision (Debian revision from debian/changelog),
# SOURCE_DATE_EPOCH (the changelog entry's date), stage (the staged tree), outdir.

if [ -n "${FTPGATE_BINARY:-}" ]; then
    FTPGATE_BINARY=$(realpath -e "$FTPGATE_BINARY") || exit 1
fi
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pkg=$top/packaging
outdir=$top/target/packages
cd "$top" || exit 1

# FTPGATE_CARGO_FLAGS adds flags to cargo (e.g. --offline). FTPGATE_BINARY packages a binary
# built elsewhere instead of running cargo build.
read -r -a cargo_flags <<<"${FTPGATE_CARGO_FLAGS:-}"
if [ -n "${FTPGATE_BINARY:-}" ]; then
    binary=$FTPGATE_BINARY
else
    cargo build --release --locked "${cargo_flags[@]}"
    binary=$top/target/release/ftpgate
fi

pkgid=$(cargo pkgid --locked "${cargo_flags[@]}")
version=${pkgid##*[#@]}

# The newest changelog entry names the package version: UPSTREAM-REVISION.
read -r changelog_version < <(sed -n '1s/^ftpgate (\([^)]*\)).*/\1/p' "$pkg/debian/changelog")
if [ "${changelog_version%-*}" != "$version" ]; then
    echo "$(basename "$0"): Cargo.toml says $version but packaging/debian/changelog starts" \
        "with $changelog_version: add a changelog entry for $version" >&2
    exit 1
fi
revision=${changelog_version##*-}
changelog_date=$(sed -n 's/^ -- .*>  \(.*\)$/\1/p' "$pkg/debian/changelog" | head -n 1)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date -d "$changelog_date" +%s)}
export SOURCE_DATE_EPOCH

# The copyright file must name every crate linked into the binary (not the build-time
# procedural macros), so a new dependency cannot slip in without its license.
missing=()
while IFS=' ' read -r crate _; do
    [ "$crate" = ftpgate ] && continue
    grep -q "crate:$crate\b" "$pkg/debian/copyright" || missing+=("$crate")
done < <(cargo tree --locked "${cargo_flags[@]}" -e normal,no-proc-macro --prefix none \
    --format '{p}' | sort -u)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "$(basename "$0"): packaging/debian/copyright does not list these crates linked" \
        "into ftpgate: ${missing[*]}" >&2
    exit 1
fi

stage=$top/target/packaging/root
"$pkg/stage.sh" "$stage" "$binary"
mkdir -p "$outdir"
