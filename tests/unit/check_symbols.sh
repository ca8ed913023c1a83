#!/bin/sh
# Every global symbol is defined in one library only. Static libraries do not make the
# linker complain about a second definition: it silently takes the first it meets (ingest
# once defined its own mxs_outcome_names, in another order, and the scanner wrote wrong
# outcome names). Usage: check_symbols.sh LIB.a...
set -eu
dups=$(for lib in "$@"; do
  nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[TDRB]$/ { print $3 }' | sort -u
done | sort | uniq -d)
if [ -n "$dups" ]; then
  echo "global symbols defined in more than one library:"
  for s in $dups; do
    printf '  %s:' "$s"
    for lib in "$@"; do
      nm -g --defined-only "$lib" 2>/dev/null | awk -v s="$s" 'NF == 3 && $3 == s { found = 1 } END { exit !found }' && printf ' %s' "$(basename "$lib")"
    done
    echo
  done
  exit 1
fi
echo "$# libraries, no global symbol defined twice"
