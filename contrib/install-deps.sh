#!/usr/bin/env bash
# Installs the Debian packages mxsurvey needs to build, test and run. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=(
  build-essential cmake pkg-config clang python3
  libssl-dev libevent-dev libc-ares-dev libpq-dev libjansson-dev libcmocka-dev
  libjemalloc-dev
  postgresql postgresql-contrib openssl publicsuffix
  unbound nsd ldnsutils dnsperf nginx apache2 curl postfix libnss-wrapper
  dovecot-imapd dovecot-pop3d
  chromium time
  dpkg-dev adduser systemd man-db groff-base iproute2
  sslscan nmap testssl.sh
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # Postfix asks a question on install; answer it before apt does.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Exim for the tests (tests/lib/exim.py): Debian installs one MTA (Postfix here), so its
# .debs are kept to be unpacked with dpkg -x into the build tree when a test needs them.
exim_debs=/var/cache/mxsurvey/exim4-debs
if ! ls "$exim_debs"/exim4-daemon-light_*.deb >/dev/null 2>&1; then
  lib="$(dirname "$0")/../tests/lib/exim.py"
  $SUDO python3 "$lib" fetch "$exim_debs" >/dev/null ||
    { $SUDO apt-get update -qq && $SUDO python3 "$lib" fetch "$exim_debs" >/dev/null; }
fi
