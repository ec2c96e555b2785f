#!/usr/bin/env bash
# Writes a text classification dataset of real text nobody here wrote: the
# paragraphs of six licenses in /usr/share/common-licenses (every Debian
# machine has them), one per line as LICENSE<TAB>PARAGRAPH (whitespace
# collapsed, paragraphs of at least 40 characters).
#
#   bash bench/license-data.sh OUT.tsv
#
# The task: which license a paragraph comes from. `loomc train --data` holds
# out every 5th paragraph of each license (a fixed split).
set -euo pipefail
out=${1:?usage: bench/license-data.sh OUT.tsv}
dir=/usr/share/common-licenses
: >"$out"
for license in Apache-2.0 Artistic GFDL-1.3 GPL-3 LGPL-2.1 MPL-2.0; do
  [ -f "$dir/$license" ] || { echo "license-data: no $dir/$license" >&2; exit 1; }
  awk -v label="$license" 'BEGIN { RS = "" } {
      gsub(/[ \t\r\n]+/, " "); sub(/^ /, ""); sub(/ $/, "")
      if (length($0) >= 40) print label "\t" $0
    }' "$dir/$license" >>"$out"
done
echo "license-data: $(wc -l <"$out") paragraphs in $out"
