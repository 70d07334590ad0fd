#!/bin/sh
# run.sh DIR: runs the three agents in DIR (a directory in a Cairn mount) and waits for them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$1"
"$here/summary.sh" & s=$!
"$here/risk.sh" & r=$!
sleep 0.2
"$here/research.sh"
wait $r $s
cat summary.md
