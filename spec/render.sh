#!/usr/bin/env bash
# Render the Internet-Draft offline: markdown -> RFCXML v3 -> text and HTML.
#
# Needs kramdown-rfc (Debian: ruby-kramdown-rfc2629; the binary is
# kramdown-rfc or kramdown-rfc2629) and xml2rfc (set XML2RFC to override,
# e.g. XML2RFC=$HOME/venv-spec/bin/xml2rfc). References come only from
# spec/refcache/; nothing is fetched. Fails on any kramdown-rfc or xml2rfc
# line starting with "***", on any xml2rfc error, and on any warning about a
# reference.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/draft-mimi-onion.md"
out="$here/build"
name="draft-mimi-onion"

if command -v kramdown-rfc >/dev/null 2>&1; then
  KRAMDOWN="kramdown-rfc"
elif command -v kramdown-rfc2629 >/dev/null 2>&1; then
  KRAMDOWN="kramdown-rfc2629"
else
  echo "render.sh: kramdown-rfc not found (apt-get install ruby-kramdown-rfc2629)" >&2
  exit 1
fi
XML2RFC="${XML2RFC:-xml2rfc}"
if ! command -v "$XML2RFC" >/dev/null 2>&1; then
  echo "render.sh: xml2rfc not found (pip install xml2rfc, or set XML2RFC)" >&2
  exit 1
fi

mkdir -p "$out"
log="$out/render.log"
: >"$log"

# kramdown-rfc copies cached references into its own working cache; give it a
# scratch copy so the committed refcache is never modified.
cache="$(mktemp -d)"
trap 'rm -rf "$cache"' EXIT
cp "$here"/refcache/*.xml "$cache"/

check() { # $1: stage name, $2: file with the stage's output
  local bad=0
  if grep -n '^\*\*\*' "$2" >&2; then bad=1; fi
  if grep -niE '(^|[^a-z])error[: ]' "$2" >&2; then bad=1; fi
  if grep -niE 'broken reference|unresolved|could not find reference|no such anchor|no link definition' "$2" >&2; then bad=1; fi
  if [ "$bad" -ne 0 ]; then
    echo "render.sh: $1 reported problems (see above)" >&2
    exit 1
  fi
}

stage_log="$out/kramdown.log"
if ! KRAMDOWN_OFFLINE=1 KRAMDOWN_REFCACHEDIR="$cache" KRAMDOWN_NO_TARGETS=1 \
    "$KRAMDOWN" "$src" >"$out/$name.xml" 2>"$stage_log"; then
  cat "$stage_log" >&2
  echo "render.sh: kramdown-rfc failed" >&2
  exit 1
fi
cat "$stage_log" >>"$log"
check kramdown-rfc "$stage_log"

for fmt in text html; do
  ext="$fmt"; [ "$fmt" = text ] && ext=txt
  stage_log="$out/xml2rfc-$fmt.log"
  if ! "$XML2RFC" --no-network --"$fmt" -o "$out/$name.$ext" "$out/$name.xml" \
      >"$stage_log" 2>&1; then
    cat "$stage_log" >&2
    echo "render.sh: xml2rfc --$fmt failed" >&2
    exit 1
  fi
  cat "$stage_log" >>"$log"
  check "xml2rfc --$fmt" "$stage_log"
done

echo "render.sh: wrote $out/$name.xml, $name.txt, $name.html"
