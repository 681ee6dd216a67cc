#!/usr/bin/env bash
# Fuzzes the backend's HTTP API against its own OpenAPI document with schemathesis.
#
#   bash backend/fuzz/api-fuzz.sh        (or `make test-api`, which builds the backend first)
#
# Starts `conference-backend dev` (a fresh anvil from anvil/node_modules with the contracts and the
# offers, a database in a temporary folder, the API on a free loopback port), signs one agreement of
# each kind with anvil's dev customer (cast): a dynamic-price one the service runs, a fixed-price one
# it declines (US only, the service runs in the EU), prepaid minutes and a reserved window, waits
# until the first is active and the second refunded and /readyz answers 200, then lets schemathesis
# send every operation of /api/openapi.json generated valid and invalid requests (half the agreement
# ids drawn from those four, see schemathesis.toml), and fails on any answer that is:
#   a 5xx                                  (not_a_server_error)
#   a status the document does not list    (status_code_conformance)
#   of another content type than listed    (content_type_conformance)
#   a body that its schema does not admit  (response_schema_conformance)
#   a 2xx to a request the schema forbids  (negative_data_rejection)
#   not a 405 with Allow to a method a path does not take (unsupported_method, allow_header_conformance)
# The backend is stopped afterwards, whatever happened (trap).
#
# Exit status: 0 nothing found, 1 schemathesis found something (its report says what, with a curl line
# to reproduce), 2 the run could not start (no backend binary, no anvil, the backend did not come up).
#
# Installs schemathesis (the version pinned in requirements.txt) into a virtualenv outside the clone,
# ${XDG_CACHE_HOME:-~/.cache}/conference-tools/schemathesis-venv (SCHEMATHESIS_VENV overrides it), and
# rebuilds it only when that file changes. FUZZ_MAX_EXAMPLES (default 60) bounds the cases per
# operation and so the run time; FUZZ_SEED fixes the generation to replay a run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
requirements="$here/requirements.txt"
backend="${BACKEND:-${CARGO_TARGET_DIR:-$root/target}/debug/conference-backend}"
max_examples="${FUZZ_MAX_EXAMPLES:-60}"

if [[ ! -x "$backend" ]]; then
  echo "api-fuzz: no backend binary at $backend: run 'cargo build -p conference-backend' first" >&2
  exit 2
fi
# cast itself, not the npm package's launcher in node_modules/.bin: that one always exits 0.
cast="$(compgen -G "$root/anvil/node_modules/@foundry-rs/cast-*/bin/cast" | head -n 1 || true)"
if [[ ! -x "$root/anvil/node_modules/.bin/anvil" || ! -x "$cast" ]]; then
  echo "api-fuzz: anvil or cast is missing from anvil/node_modules: run 'make tools' first" >&2
  exit 2
fi

# --- install (once per version of requirements.txt) -----------------------------------------------
venv="$("$root/anvil/python-tool.sh" schemathesis "$requirements" "${SCHEMATHESIS_VENV:-}")"

# --- the backend ----------------------------------------------------------------------------------
work="$(mktemp -d)"
backend_pid=""
stop_backend() {
  local status=$?
  if [[ -n "$backend_pid" ]] && kill -0 "$backend_pid" 2> /dev/null; then
    # SIGTERM: the backend stops its rooms and its anvil on the way out; SIGKILL if it hangs.
    kill -TERM "$backend_pid" 2> /dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$backend_pid" 2> /dev/null || break
      sleep 0.1
    done
    kill -KILL "$backend_pid" 2> /dev/null || true
    wait "$backend_pid" 2> /dev/null || true
  fi
  if [[ $status -ne 0 && -s "$work/backend.err" ]]; then
    echo "api-fuzz: the backend's log, last lines:" >&2
    tail -n 30 "$work/backend.err" >&2
  fi
  rm -rf "$work"
}
trap stop_backend EXIT

# From the root: dev finds anvil at its default, anvil/node_modules/.bin/anvil.
cd "$root"
RUST_LOG="${RUST_LOG:-warn}" "$backend" dev --anvil-port 0 --http 127.0.0.1:0 --data-dir "$work/data" \
  > "$work/backend.out" 2> "$work/backend.err" &
backend_pid=$!

# Port 0 leaves the choice to the kernel (no race for a "free" port): the READY line says which, and
# where the chain and the escrow are.
ready() { sed -n 's/^READY //p' "$work/backend.out" | "$venv/bin/python" -c "import json, sys; print(json.load(sys.stdin)['$1'])" 2> /dev/null; }
web=""
for _ in $(seq 1 600); do
  if ! kill -0 "$backend_pid" 2> /dev/null; then
    echo "api-fuzz: the backend exited before it was ready" >&2
    exit 2
  fi
  web="$(ready web || true)"
  [[ -n "$web" ]] && break
  sleep 0.1
done
if [[ -z "$web" ]]; then
  echo "api-fuzz: the backend printed no READY line within 60 s" >&2
  exit 2
fi
base="${web%/}" rpc="$(ready rpc)" escrow="$(ready escrow)"

# --- agreements to read ---------------------------------------------------------------------------
# The devnet's customer: anvil's public dev account 1, worthless outside a local chain.
customer_key="$(ready customerKey)"
# Terms 1..4 are the devnet's offers: dynamic price, fixed price, prepaid minutes, reserved window.
agree() { # <function signature> <terms> <regions> <quantity for quote> <arguments after terms, regions, gdpr>
  local signature="$1" terms="$2" regions="$3" quantity="$4"
  shift 4
  local deposit
  deposit="$("$cast" call --rpc-url "$rpc" "$escrow" "quote(uint32,uint32,bool,uint256)(uint256,uint256)" \
    "$terms" "$regions" false "$quantity" | head -n 1 | cut -d' ' -f1)"
  "$cast" send --rpc-url "$rpc" --private-key "$customer_key" "$escrow" "$signature" "$terms" "$regions" false "$@" \
    --value "$deposit" > /dev/null
}
now="$("$cast" block latest --field timestamp --rpc-url "$rpc")"
agree "sign(uint32,uint32,bool)" 1 0 0                       # 1: runs (region EU is served)
agree "sign(uint32,uint32,bool)" 2 2 0                       # 2: US only, declined and refunded
agree "buyMinutes(uint32,uint32,bool,uint32)" 3 0 10 10      # 3: ten prepaid minutes, idle
agree "reserve(uint32,uint32,bool,uint40,uint40)" 4 0 3600 "$now" "$((now + 3600))" # 4: a window, kept warm

# Until the watcher has read them, the first runs and the second is refunded, and /readyz says 200.
if ! "$venv/bin/python" - "$base" <<'PY'; then
import json, sys, time, urllib.request, urllib.error
base, deadline = sys.argv[1], time.monotonic() + 60
def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return None, None
want = {"/api/agreements/1": "active", "/api/agreements/2": "refunded"}
while True:
    seen = {path: (get(path)[1] or {}).get("status") for path in want}
    ready = get("/readyz")[0]
    if seen == want and ready == 200:
        sys.exit(0)
    if time.monotonic() > deadline:
        print(f"api-fuzz: not ready to fuzz within 60 s: agreements {seen}, /readyz {ready}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)
PY
  exit 2
fi

# --- fuzz -----------------------------------------------------------------------------------------
echo "api-fuzz: schemathesis against $base/api/openapi.json, up to $max_examples cases per operation" >&2
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
checks+=,negative_data_rejection,unsupported_method,allow_header_conformance
seed=()
[[ -n "${FUZZ_SEED:-}" ]] && seed=(--seed "$FUZZ_SEED")
started=$SECONDS
status=0
# From the scratch folder: nothing (hypothesis' example database included) is written into the clone.
(cd "$work" && "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/api/openapi.json" \
  --checks "$checks" \
  --max-examples "$max_examples" "${seed[@]}" \
  --generation-database none \
  --request-timeout 10 \
  --no-color) || status=$?
echo "api-fuzz: schemathesis took $((SECONDS - started)) s" >&2
if [[ $status -ne 0 ]]; then
  echo "api-fuzz: schemathesis found a problem (above), or could not run" >&2
  exit 1
fi
