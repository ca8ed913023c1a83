#!/usr/bin/env bash
# Installs the Debian packages mxsurvey needs to build, test and run. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=(
  build-essential cmake pkg-config clang python3
  libssl-dev libevent-dev libc-ares-dev libpq-dev libjansson-dev libcmocka-dev
  postgresql postgresql-contrib openssl publicsuffix
  unbound nsd ldnsutils dnsperf nginx apache2 curl postfix
  chromium time
  dpkg-dev adduser systemd man-db groff-base iproute2
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
