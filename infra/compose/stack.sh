#!/usr/bin/env bash
# `make up` / `make down`: the compose stack (infra/compose.yaml) with the credentials of
# infra/.env. Says what is missing instead of failing half-way:
#   - Docker Compose v2.20 or later (`docker compose`; the file uses depends_on.required),
#   - a container engine that answers (`docker info`),
#   - infra/.env, with none of infra/compose.env.example's placeholders left in it.
#   bash infra/compose/stack.sh up [cluster]     # PROFILE=cluster: three Qdrant nodes
#   bash infra/compose/stack.sh down [ARGS...]   # e.g. --volumes to delete the data too
set -euo pipefail
cd "$(dirname "$0")/../.."

ENV_FILE=${COMPOSE_ENV_FILE:-infra/.env}
fail() { echo "make $ACTION: $*" >&2; exit 1; }

ACTION=${1:?usage: stack.sh up [PROFILE] | down [ARGS...]}
shift

command -v docker >/dev/null 2>&1 \
  || fail "no docker command: install Docker Engine and its compose plugin (Compose >= 2.20)"
version=$(docker compose version --short 2>/dev/null) \
  || fail "'docker compose' (Compose v2) is missing: install the docker-compose-plugin package; the old docker-compose 1.x cannot read this file (infra/README.md)"
version=${version#v}
IFS=. read -r major minor _ <<<"$version"
if [ "${major:-0}" -lt 2 ] || { [ "$major" = 2 ] && [ "${minor:-0}" -lt 20 ]; }; then
  fail "Docker Compose $version is too old: infra/compose.yaml needs 2.20 or later (depends_on.required)"
fi
docker info >/dev/null 2>&1 \
  || fail "no container engine answers 'docker info': start the Docker daemon (or point DOCKER_HOST at one)"
[ -f "$ENV_FILE" ] \
  || fail "$ENV_FILE is missing: cp infra/compose.env.example $ENV_FILE, then set its passwords"
if [ "$ACTION" = up ] && grep -Eq '^[A-Z_]+=replace-me' "$ENV_FILE"; then
  fail "$ENV_FILE still has placeholders of infra/compose.env.example: $(grep -Eo '^[A-Z_]+=replace-me' "$ENV_FILE" | cut -d= -f1 | tr '\n' ' ')"
fi

compose() { docker compose -f infra/compose.yaml --env-file "$ENV_FILE" "$@"; }

case "$ACTION" in
  up)
    profile=${1:-}
    compose ${profile:+--profile "$profile"} up -d --build
    cat <<EOF
Up. API http://127.0.0.1:8000 (a key: docker compose -f infra/compose.yaml --env-file $ENV_FILE run --rm api rag keys create --tenant acme --role ingestor)
Grafana http://127.0.0.1:3000 (admin, GRAFANA_ADMIN_PASSWORD), Prometheus http://127.0.0.1:9090, Qdrant http://127.0.0.1:6333
EOF
    ;;
  down)
    # Every profile, so the cluster's extra Qdrant nodes go too.
    compose --profile cluster down "$@"
    ;;
  *)
    fail "unknown action (up or down)"
    ;;
esac
