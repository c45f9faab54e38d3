#!/usr/bin/env bash
# Runs every test of the repository on a fresh Debian machine: installs what
# the end-to-end tests need (Chromium, the npm clients), then vet, the race
# tests and a short fuzz pass over every fuzz target.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

# apt needs root: use sudo only when we are not root and it is there.
apt_get() {
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get "$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n env DEBIAN_FRONTEND=noninteractive apt-get "$@"
	else
		echo "need root or sudo to run: apt-get $*" >&2
		return 1
	fi
}

apt_updated=
apt_install() {
	if [ -z "$apt_updated" ]; then
		apt_get update
		apt_updated=1
	fi
	apt_get install -y "$@"
}

if ! command -v go >/dev/null 2>&1; then
	echo "go is not installed (see go.mod for the version)" >&2
	exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
	step "installing chromium (browser tests)"
	apt_install chromium
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	step "installing node and npm (STOMP.js tests)"
	apt_install nodejs npm
fi

step "go mod download"
go mod download

step "npm ci in tests/js"
(cd tests/js && npm ci --no-audit --no-fund)

step "go vet ./..."
go vet ./...

step "go test -race ./..."
go test -race -count=1 -timeout 12m ./...

# fuzz_one DIR NAME SECONDS fuzzes one target. Go 1.26's fuzz coordinator can
# fail a healthy target with a bare "context deadline exceeded" when a busy
# worker misses the -fuzztime deadline (Go issue 75804, fixed in 1.27). Such
# a run, with no failing input written, is repeated with a count instead of a
# time, which has no deadline to miss; a target that hangs still fails there
# through the timeout.
count_inputs() {
	if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi
}
fuzz_one() {
	local dir=$1 name=$2 secs=$3 log before after
	before=$(count_inputs "$dir/testdata/fuzz/$name")
	log=$(mktemp)
	if go test -run='^$' -fuzz="^${name}\$" -fuzztime="${secs}s" "./$dir" 2>&1 | tee "$log"; then
		rm -f "$log"
		return 0
	fi
	after=$(count_inputs "$dir/testdata/fuzz/$name")
	if [ "$after" -eq "$before" ] && ! grep -q 'Failing input written' "$log" &&
		grep -q 'context deadline exceeded' "$log"; then
		rm -f "$log"
		echo "--- $name: deadline race without a failing input; repeating with -fuzztime=5000x"
		timeout 120 go test -run='^$' -fuzz="^${name}\$" -fuzztime=5000x "./$dir"
		return
	fi
	rm -f "$log"
	return 1
}

# Fuzz targets: each one gets a few seconds so the whole pass stays near a
# minute however many there are (2 s minimum).
step "fuzz regression"
mapfile -t targets < <(
	grep -rE --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git \
		'^func Fuzz[A-Za-z0-9_]*\(' . |
		sed -E 's#^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#; s#^\./[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#. \1#' |
		sort -u
)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "no fuzz targets"
else
	per=$((60 / ${#targets[@]}))
	if [ "$per" -gt 5 ]; then per=5; fi
	if [ "$per" -lt 2 ]; then per=2; fi
	for t in "${targets[@]}"; do
		dir=${t% *}
		name=${t#* }
		echo "--- $name in ./$dir (${per}s)"
		fuzz_one "$dir" "$name" "$per"
	done
fi

step "all tests passed in $((SECONDS - started))s"
