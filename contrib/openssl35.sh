#!/usr/bin/env bash
# Builds OpenSSL 3.5 LTS from Debian trixie's source package into a private prefix and
# prints that prefix on stdout (the last line), for
#
#     cmake -S . -B build-ossl35 -DMXS_OPENSSL_ROOT="$(contrib/openssl35.sh)"
#
# (or -DMXS_OPENSSL=3.5, which runs this script at configure time). Nothing is installed
# system-wide: the source comes through apt-get's ordinary client with a private
# configuration (a trixie deb-src list, its own index and cache under the cache dir,
# checked against the signed index with Debian's archive keyring), the library goes to
# CACHE/openssl-VERSION. A finished prefix is reused (the .mxs-complete stamp).
#
# Usage: contrib/openssl35.sh [--cache DIR] [--version DEBIAN_VERSION] [--jobs N]
#   --cache    where the source, the build and the prefix go
#              (default: $MXS_CACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/mxsurvey)
#   --version  the source package version (default: 3.5.7-1~deb13u2, the one measured in
#              docs/performance.md; apt-cache showsrc lists what the index offers)
# Needs: apt, dpkg-dev (dpkg-source, dpkg-buildflags), build-essential, perl.
set -euo pipefail

cache="${MXS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mxsurvey}"
version="3.5.7-1~deb13u2"
jobs="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "openssl35.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

upstream="${version%-*}"
prefix="$cache/openssl-$version"
if [ -f "$prefix/.mxs-complete" ]; then
  echo "$prefix"
  exit 0
fi
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
prefix="$cache/openssl-$version"
work="$cache/openssl-work"
apt="$work/apt"
mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$work/src"

# A private apt: only trixie's source index, nothing of the machine's own lists changes.
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian trixie main" > "$apt/sources.list"
aptopts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
         -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o "Dir::State::status=/var/lib/dpkg/status")
[ "$(id -u)" -ne 0 ] || aptopts+=(-o "APT::Sandbox::User=root")

log="$work/build.log"
: > "$log"
echo "openssl35.sh: fetching openssl $version (Debian trixie source) into $work (log: $log)" >&2
apt-get "${aptopts[@]}" -qq update >> "$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
src="$work/src/openssl-$upstream"
rm -rf "$src"
if ! (cd "$work/src" && apt-get "${aptopts[@]}" -q source "openssl=$version" >> "$log" 2>&1); then
  tail -5 "$log" >&2
  echo "openssl35.sh: openssl=$version could not be fetched; the index offers:" >&2
  apt-cache "${aptopts[@]}" showsrc openssl | sed -n 's/^Version: /  /p' >&2
  exit 1
fi

# Debian's configuration (debian/rules CONFARGS, its debian-ARCH target and
# dpkg-buildflags), with a private prefix; OpenSSL's directory stays the system's
# (/usr/lib/ssl: openssl.cnf and the CA certificates as Debian's 3.0 uses them). Left out:
# FIPS, the unit tests, and zlib/zstd (certificate compression: neither Debian's 3.0 nor
# the fleet offers it, so records stay comparable). The libraries and the openssl tool find
# each other by rpath.
arch="$(dpkg-architecture -qDEB_HOST_ARCH)"
confargs=(shared --prefix="$prefix" --openssldir=/usr/lib/ssl --libdir=lib
          no-idea no-mdc2 no-rc5 no-ssl3 no-ssl3-method enable-rfc3779 enable-cms
          no-capieng no-rdrand enable-tfo no-zlib no-zstd no-tests no-docs)
case "$arch" in amd64|arm64|ppc64el|riscv64) confargs+=(enable-ec_nistp_64_gcc_128) ;; esac
case "$arch" in amd64|i386) ;; *) confargs+=(no-padlockeng) ;; esac
target="debian-$arch"
grep -q "\"$target\"" "$src/Configurations/20-debian.conf" || target=""
eval "$(dpkg-buildflags --export=sh)"
export LDFLAGS="${LDFLAGS:-} -Wl,-rpath,$prefix/lib -Wl,--disable-new-dtags"
start=$SECONDS
rm -rf "$prefix"
(
  cd "$src"
  ./Configure "${confargs[@]}" ${target:+"$target"}
  make -j"$jobs"
  make install_sw
) >> "$log" 2>&1 || { tail -30 "$log" >&2; echo "openssl35.sh: build failed (log: $log)" >&2; exit 1; }
"$prefix/bin/openssl" version >&2
echo "openssl35.sh: built in $((SECONDS - start)) s with $jobs jobs" >&2
rm -rf "$src"
touch "$prefix/.mxs-complete"
echo "$prefix"
