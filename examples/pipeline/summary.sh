#!/bin/sh
# The summary agent: waits for the glossary and the risk report, then writes the summary.
set -eu
export CAIRN_AGENT=summary
here=$(dirname "$0")
"$here/wait-for.sh" glossary.md
"$here/wait-for.sh" risk.md
{
    echo "# Summary"
    head -n 1 glossary.md
    cat risk.md
} > .summary.md.tmp
mv .summary.md.tmp summary.md
