#!/bin/sh
# The research agent: writes the glossary the others wait for.
set -eu
export CAIRN_AGENT=research
cat > .glossary.md.tmp <<'TEXT'
# Glossary
- indemnity: a promise to cover the other side's losses
- force majeure: events nobody controls that excuse a delay
TEXT
mv .glossary.md.tmp glossary.md
