# Sourced by bench_serve.sh and bench_read.sh, so both measure the same files.
# distinct_files HUB_DIR...: every file of the hubs with distinct bytes (the
# first of each SHA-256), largest first, as "size root rel" lines.
distinct_files() {
  local seen
  seen=$(mktemp)
  for root in "$@"; do
    (cd "$root" && find . -type f -printf '%s %P\n') | awk -v h="$root" '{ print $0, h }'
  done | sort -rn | while read -r size rel root; do
    sha=$(sha256sum "$root/$rel" | cut -c1-64)
    grep -q "$sha" "$seen" && continue
    echo "$sha" >>"$seen"
    echo "$size $root $rel"
  done
  rm -f "$seen"
}
