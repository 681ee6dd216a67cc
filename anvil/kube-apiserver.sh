#!/usr/bin/env bash
# A real kube-apiserver (and etcd, and kubectl 1.20) for the Kubernetes tests, from Debian packages only.
#
#   anvil/kube-apiserver.sh           prints the path of the cached kube-apiserver binary
#   anvil/kube-apiserver.sh kubectl   prints the path of the cached kubectl 1.20 (with `kubectl kustomize`)
#
# No registry this project reaches ships a kube-apiserver binary, so the first run builds one from
# Debian's source package `kubernetes` (1.20.2, the upstream tree with vendor/): a deb-src line is
# derived from the machine's own configured Debian source and used through a private sources list
# and lists directory (the system's apt configuration is left alone), the source is downloaded and
# unpacked, `make WHAT=cmd/kube-apiserver` builds it (a few minutes on 2 cores), and the binary is
# kept under ${XDG_CACHE_HOME:-~/.cache}/conference-tools/kubernetes-v1.20.2/ so later runs and CI
# reuse it. The build tree is removed afterwards. Two runs at once build once (a lock file).
#
# etcd comes from the package etcd-server. kubectl is unpacked from the package kubernetes-client
# into the same cache folder rather than installed: machines with the cloud SDK already own
# /usr/bin/kubectl through another package, and dpkg refuses to overwrite it.
set -euo pipefail

version=1.20.2
cache="${XDG_CACHE_HOME:-$HOME/.cache}/conference-tools/kubernetes-v$version"
apiserver="$cache/kube-apiserver"
kubectl="$cache/kubectl"

# The build trees and downloads, removed however the script ends.
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
# Installs the Debian packages given as COMMAND=PACKAGE pairs whose command is missing.
need() {
  local missing=() pair
  for pair in "$@"; do command -v "${pair%%=*}" > /dev/null || missing+=("${pair#*=}"); done
  ((${#missing[@]})) || return 0
  echo "installing ${missing[*]}" >&2
  as_root apt-get install -y -qq "${missing[@]}" > /dev/null 2>&1 ||
    { as_root apt-get update -qq && as_root apt-get install -y -qq "${missing[@]}" > /dev/null; }
}

# deb-src lines for the machine's own Debian suites (this release's codename and its -updates /
# -security suites), read from the configured one-line and deb822 sources. Third-party
# repositories (other suite names) are left out: they rarely publish sources.
debian_source_lines() {
  python3 - << 'EOF'
import glob, os, re
codename = ""
for line in open("/etc/os-release"):
    if line.startswith("VERSION_CODENAME="):
        codename = line.split("=", 1)[1].strip().strip('"')
def ours(suite):
    return suite == codename or suite.startswith(codename + "-")
entries = []  # (uris, suites, components, signed_by)
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
for path in files:
    if not os.path.exists(path):
        continue
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line)
        if not m:
            continue
        opts = m.group(1) or ""
        sb = re.search(r"signed-by=(\S+?)[\s\]]", opts + " ")
        entries.append(([m.group(2)], [m.group(3)], m.group(4).split(), sb.group(1) if sb else None))
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        sb = fields.get("signed-by", "")
        sb = sb if sb.startswith("/") and "\n" not in sb else None
        entries.append((fields.get("uris", "").split(), fields.get("suites", "").split(),
                        fields.get("components", "").split(), sb))
seen = set()
for uris, suites, components, sb in entries:
    for uri in uris:
        for suite in suites:
            if not ours(suite) or (uri, suite) in seen:
                continue
            seen.add((uri, suite))
            opts = f"[signed-by={sb}] " if sb else ""
            print(f"deb-src {opts}{uri} {suite} {' '.join(components)}")
EOF
}

build_apiserver() {
  need go=golang-go rsync=rsync dpkg-source=dpkg-dev
  local work
  work="$(mktemp -d "${TMPDIR:-/tmp}/kube-build.XXXXXX")"
  scratch+=("$work")
  mkdir -p "$work/lists/partial" "$work/src"
  debian_source_lines > "$work/sources.list"
  [[ -s "$work/sources.list" ]] || { echo "no Debian source configured in /etc/apt" >&2; return 1; }
  local apt=(apt-get -q -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
    -o APT::Sandbox::User=root)
  echo "fetching Debian's kubernetes source package" >&2
  "${apt[@]}" update > /dev/null
  (cd "$work/src" && "${apt[@]}" source --download-only kubernetes > /dev/null)
  local dsc
  dsc="$(ls "$work"/src/kubernetes_*.dsc | head -1)"
  dpkg-source --no-check -x "$dsc" "$work/src/kubernetes" > /dev/null
  echo "building kube-apiserver $version (a few minutes)" >&2
  local start=$SECONDS
  if ! (cd "$work/src/kubernetes" &&
    GOCACHE="$work/go-cache" GOPATH="$work/gopath" GOFLAGS=-mod=vendor \
      KUBE_GIT_VERSION="v$version" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean \
      make WHAT=cmd/kube-apiserver > "$work/build.log" 2>&1); then
    # A failed make (e.g. without rsync) leaves a half-made _output that later builds trip on.
    rm -rf "$work/src/kubernetes/_output"
    tail -30 "$work/build.log" >&2
    return 1
  fi
  echo "built kube-apiserver in $((SECONDS - start)) s" >&2
  mkdir -p "$cache"
  install -m 0755 "$work/src/kubernetes/_output/bin/kube-apiserver" "$apiserver.tmp"
  mv "$apiserver.tmp" "$apiserver"
}

fetch_kubectl() {
  local work deb
  work="$(mktemp -d "${TMPDIR:-/tmp}/kubectl.XXXXXX")"
  scratch+=("$work")
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root kubernetes-client > /dev/null 2>&1) ||
    { as_root apt-get update -qq && (cd "$work" && apt-get download -q -o APT::Sandbox::User=root kubernetes-client > /dev/null); }
  deb="$(ls "$work"/kubernetes-client_*.deb | head -1)"
  dpkg-deb -x "$deb" "$work/root"
  mkdir -p "$cache"
  install -m 0755 "$work/root/usr/bin/kubectl" "$kubectl.tmp"
  mv "$kubectl.tmp" "$kubectl"
}

need etcd=etcd-server
if [[ ! -x "$apiserver" || ! -x "$kubectl" ]]; then
  mkdir -p "$cache"
  exec 9> "$cache.lock"
  flock 9
  [[ -x "$kubectl" ]] || fetch_kubectl
  [[ -x "$apiserver" ]] || build_apiserver
  exec 9>&-
fi

case "${1:-}" in
  kubectl) echo "$kubectl" ;;
  "") echo "$apiserver" ;;
  *) echo "usage: $0 [kubectl]" >&2 && exit 2 ;;
esac
