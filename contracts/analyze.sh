#!/usr/bin/env bash
# Static analysis of the contracts in contracts/src with slither, offline.
#
#   bash contracts/analyze.sh        (or `make analyze`, which runs `make tools` first)
#
# Exit status: 0 no finding left, 1 at least one finding nobody has triaged, 2 the analysis could
# not run (missing tools, a compile error, slither failing).
#
# Installs slither (the versions pinned in analyze-requirements.txt) into a virtualenv outside the
# clone, ${XDG_CACHE_HOME:-~/.cache}/conference-tools/slither-venv (SLITHER_VENV overrides it), and
# rebuilds it only when that file changes. The build is forge's, with the pinned solc-js launcher:
# nothing is downloaded at run time.
#
# Triage: a finding that is accepted gets a comment, with the reason, on the line above the line this
# script prints for it, e.g.
#     // slither-disable-next-line timestamp -- metering is by block time, see SECURITY.md
# Several detectors: `timestamp,reentrancy-events`, without spaces (slither reads the list up to the
# first space). A disable comment that no longer suppresses anything is reported too
# ("unused-ignore-directive"), so stale ones get removed.
#
# slither.config.json: only results with an element in contracts/src count (OpenZeppelin and the
# tests are compiled or skipped but never reported). Every detector of impact Low and above runs,
# and the Informational and Optimization ones too, except four that are noise here: naming-convention
# (it wants immutables and the interfaces' getters of constants in mixedCase; forge lint checks names),
# pragma (it flags OpenZeppelin's pragmas differing from ours), assembly and low-level-calls (they
# flag a language feature; its dangerous uses are the business of the reentrancy, arbitrary-send-eth,
# unchecked-lowlevel and similar detectors).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
tools="$root/anvil/node_modules/.bin"
requirements="$here/analyze-requirements.txt"

# forge itself, not the npm package's launcher in node_modules/.bin: that one always exits 0, even
# when the compile fails.
forge_bin="$(compgen -G "$root/anvil/node_modules/@foundry-rs/forge-*/bin/forge" | head -n 1 || true)"
if [[ ! -x "$tools/solcjs" || ! -x "$forge_bin" ]]; then
  echo "analyze: forge or solc-js is missing from anvil/node_modules: run 'make tools' first" >&2
  exit 2
fi

# --- install (once per version of analyze-requirements.txt) -------------------------------------
venv="$("$root/anvil/python-tool.sh" slither "$requirements" "${SLITHER_VENV:-}")"

# --- build ----------------------------------------------------------------------------------------
# Into a private folder, never contracts/out or contracts/cache, which `make contracts`, `forge test`
# and the ABI check use.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PATH="$(dirname "$forge_bin"):$PATH"
cd "$here"

# The remappings made absolute for this build. With the relative ones in foundry.toml
# (`../anvil/node_modules/...`, outside the project root) forge hands solc the files it imports
# directly under `../anvil/...` and the ones those import under `/abs/path/anvil/...`, so solc
# compiles some OpenZeppelin files twice under two names; forge does not mind, but slither then
# fails to resolve references ("Failed to resolved name for reference id", "Missing inheritance")
# and reports nonsense.
remappings=()
while IFS= read -r line; do
  [[ -n "$line" ]] || continue
  lhs="${line%%=*}" rhs="${line#*=}"
  if [[ "$rhs" != /* ]]; then
    slash=""
    [[ "$rhs" == */ ]] && slash="/"
    rhs="$(realpath -m "$rhs")$slash"
  fi
  remappings+=("$lhs=$rhs")
done < <(forge remappings)
FOUNDRY_REMAPPINGS="$(printf '%s\n' "${remappings[@]}")" # one a line, as forge reads them
export FOUNDRY_REMAPPINGS

if ! forge build src --build-info --deny never --out "$work/out" --cache-path "$work/cache" \
  > "$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  echo "analyze: the contracts in src/ do not compile" >&2
  exit 2
fi

# --- analyze --------------------------------------------------------------------------------------
# slither exits non-zero whenever it finds anything; the JSON says whether it ran at all. With --json
# slither logs its errors without a level, so this launcher collects every log record of level ERROR
# into errors.json for the report below.
"$venv/bin/python" -c '
import atexit, json, logging, sys
errors = []
make_record = logging.getLogRecordFactory()
def record(*args, **kwargs):
    r = make_record(*args, **kwargs)
    if r.levelno >= logging.ERROR:
        errors.append(r.getMessage())
    return r
logging.setLogRecordFactory(record)
errors_path = sys.argv.pop()
atexit.register(lambda: json.dump(errors, open(errors_path, "w")))
from slither.__main__ import main
main()
' . --config-file "$here/slither.config.json" --foundry-out-directory "$work/out" \
  --json "$work/results.json" "$work/errors.json" > "$work/slither.log" 2>&1 || true

"$venv/bin/python" - "$work/results.json" "$work/errors.json" "$work/slither.log" "$root" "$here/src" <<'PY'
import json, os, re, sys

results_path, errors_path, log_path, root, src = sys.argv[1:6]
src = os.path.realpath(src) + os.sep


def fail_to_run(why):
    with open(log_path, encoding="utf8", errors="replace") as f:
        sys.stderr.write(f.read())
    sys.stderr.write(f"analyze: slither did not run: {why}\n")
    sys.exit(2)


try:
    with open(results_path, encoding="utf8") as f:
        report = json.load(f)
    with open(errors_path, encoding="utf8") as f:
        errors = json.load(f)
except (OSError, ValueError) as e:
    fail_to_run(e)
if not report.get("success"):
    fail_to_run(report.get("error"))

# Errors slither logs and survives. It cannot build its IR for a few OpenZeppelin functions in some
# combinations (slither 0.11.x with EIP712 and ReentrancyGuardTransient in one contract: the
# guard's three private functions), which leaves that contract's call graph incomplete: said, not
# fatal. Any other error (an unresolved reference, a missing base contract, IR for our own code)
# makes the results unreliable, and stops the run.
tolerated = re.compile(r"^Impossible to generate IR for \S+ \([^)]*node_modules/[^)]*\)")
fatal = [e for e in errors if not tolerated.match(e)]
if fatal:
    fail_to_run("it logged errors while reading the build:\n" + "\n".join(fatal))
for e in errors:
    print("analyze: warning: slither: " + " ".join(e.split()), file=sys.stderr)
if errors:
    print("analyze: warning: the call graph of those contracts is incomplete; a finding about them may "
          "be wrong (msg-value-in-nonpayable) and one may be missing\n", file=sys.stderr)

order = {"High": 0, "Medium": 1, "Low": 2, "Informational": 3, "Optimization": 4}
findings = []  # (impact, check, location, description)


def where(path, line):
    return f"{os.path.relpath(path, root)}:{line}"


for r in (report.get("results") or {}).get("detectors", []):
    if r["check"] == "unused-ignore-directive":
        # Only our own: OpenZeppelin carries disable comments for code we do not use.
        for u in r.get("unused_ignores", []):
            path = os.path.realpath(u["file"])
            if path.startswith(src):
                finding = ("Informational", r["check"], where(path, u["line"]),
                           f"slither-disable-{u['comment_type']} comment for "
                           f"{','.join(u['unused_detectors'])} suppresses nothing: remove it")
                if finding not in findings:  # slither lists each once per path it knows
                    findings.append(finding)
        continue
    # The most precise place in src/: the element spanning the fewest lines. A disable comment goes
    # on the line above it.
    spots = [
        (len(m["lines"]), m["filename_absolute"], m["lines"][0])
        for e in r.get("elements", [])
        for m in [e.get("source_mapping") or {}]
        if m.get("lines") and os.path.realpath(m.get("filename_absolute", "")).startswith(src)
    ]
    location = where(*min(spots)[1:]) if spots else "?"
    findings.append((r["impact"], r["check"], location, r["description"].strip()))

if not findings:
    print("analyze: slither found nothing untriaged in contracts/src")
    sys.exit(0)

def place(location):
    path, _, line = location.rpartition(":")
    return (path, int(line)) if line.isdigit() else (location, 0)


findings.sort(key=lambda f: (order.get(f[0], 9), place(f[2]), f[1]))
print(f"analyze: {len(findings)} untriaged slither finding(s) in contracts/src\n")
for impact, check, location, description in findings:
    print(f"[{impact}] {check}  {location}")
    for line in description.splitlines():
        print(f"    {line.strip()}")
    print()
print("Fix each, or accept it with `// slither-disable-next-line <detector> -- <reason>` on the line")
print("above the line given (documentation: slither's wiki, Detector-Documentation).")
sys.exit(1)
PY
