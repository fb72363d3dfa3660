#!/usr/bin/env bash
# The quickstart, end to end on the embedded sandbox: validate -> plan -> apply -> plan
# (one key rotated on schedule), then a break-glass replace of another -> plan, then the
# access review (keystate report).
# Resets the sandbox from seed/ first, so it shows the same story every time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
keystate="${KEYSTATE:-keystate}"
state="$here/.keystate"

rm -rf "$state"
mkdir -p "$state"
cp "$here"/seed/*.json "$state/"

step() {
  if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    printf '\n\033[1m$ %s\033[0m\n' "$*"
  else
    printf '\n$ %s\n' "$*"
  fi
}

cd "$here"
step keystate validate
"$keystate" validate

step keystate plan --show-unmanaged
"$keystate" plan --show-unmanaged

step keystate apply --auto-approve --secrets-out .keystate/new-keys.jsonl
"$keystate" apply --auto-approve --secrets-out .keystate/new-keys.jsonl

step keystate plan --detailed-exitcode
"$keystate" plan --detailed-exitcode

# Break glass: a key leaked. Replace it now; with no --overlap the old key is removed as
# soon as the new value is in the secrets file.
step keystate apply --replace coveo-prod/site-search --auto-approve --secrets-out .keystate/new-keys.jsonl
"$keystate" apply --replace coveo-prod/site-search --auto-approve \
  --secrets-out .keystate/new-keys.jsonl

step keystate plan --detailed-exitcode
"$keystate" plan --detailed-exitcode

# The access review of every live key, the unmanaged and the leaked ones too: one
# self-contained HTML page, and its Markdown summary here.
step keystate report --out .keystate/access-review.html
"$keystate" report --out .keystate/access-review.html
step keystate report --format markdown
"$keystate" report --format markdown | sed -n '1,30p'

printf '\nDone. The new key values are in %s (mode 0600); nothing else ever prints them.\n' \
  "examples/quickstart/.keystate/new-keys.jsonl"

cat <<'NEXT'

Run keystate yourself: it is installed in .venv/ (or `pip install .` to put `keystate`
on your PATH; `make demo` again resets the sandbox):

  cd examples/quickstart
  ../../.venv/bin/keystate plan                  # nothing to do now
  # edit keystate.yaml: add `browse` to the acl of storefront-search, then
  ../../.venv/bin/keystate plan                  # one update, shown field by field
  ../../.venv/bin/keystate plan --format markdown   # the pull-request comment
  ../../.venv/bin/keystate apply --secrets-out .keystate/new-keys.jsonl
  # open .keystate/access-review.html in a browser: the access review

Next: docs/commands.md (every command), docs/configuration.md (the YAML),
docs/ci.md (GitHub Actions recipes); `keystate completion bash` for tab completion.
NEXT
