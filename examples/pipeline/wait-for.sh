#!/bin/sh
# wait-for.sh FILE: returns once FILE exists in the workspace (the current directory, in a Cairn
# mount), however and from whichever mount it appears. The seq is read before the check, so a
# file that appears between the check and the watch is still seen.
set -eu
file=$1
seq=$(cairn log --json --limit 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["seq"])')
[ -e "$file" ] && exit 0
# Agents publish with write-then-rename: the rename is the moment the file is complete.
cairn watch --since "$seq" --count 1 --kind rename,create "$file" > /dev/null
while [ ! -e "$file" ]; do sleep 0.05; done
