#!/bin/sh
# The risk agent: waits for the glossary, writes a risk report, once. Safe to kill and start
# again: the report appears only by rename, and an agent that finds it published stops.
set -eu
export CAIRN_AGENT=risk
[ -e risk.md ] && exit 0
"$(dirname "$0")/wait-for.sh" glossary.md
# Only one risk agent works at a time (two restarts racing must not both publish).
exec 9> .risk.lock
flock 9
[ -e risk.md ] && exit 0
{
    echo "# Risks"
    grep -c '^- ' glossary.md | sed 's/^/terms reviewed: /'
    echo "- indemnity clause is unlimited"
} > .risk.md.tmp
sleep "${RISK_DELAY:-0}"   # the slow part of the work
mv .risk.md.tmp risk.md
