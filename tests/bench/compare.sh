#!/usr/bin/env bash
# Runs the broker comparison in one sitting: builds stompbench and the
# brokers, installs the peers if they are missing, then for each scenario
# runs every broker in turn, ROUNDS times, rotating which broker goes first
# each round. Every broker is started fresh for each run and stopped after
# it, so no two brokers share the machine's cores at once and no run sees
# an earlier run's state. Each run's JSON lands in
# tests/bench/results/<timestamp>/, and the Markdown table of medians
# (and of Stampede's median over each peer's) is printed at the end and
# kept in summary.md there.
#
# Environment (defaults in brackets):
#   BROKERS    [stampede rabbitmq activemq gostomp floor]; floor is
#              tests/bench/relay, the least any server can do to fan a
#              message out, run in the fanout scenarios only: the
#              machine's own share of fan-out latency
#   SCENARIOS  [fanout fanout-10k queue persistent drain conns]
#   ROUNDS     [3]      DURATION [10s]    WARMUP [2s]
#   CONNS      [15000]  HOLD [10s]: the conns scenario's size and hold time
#   PREFETCH   [1000]: prefetch of the queue and persistent consumers
#   RESULTS    [tests/bench/results/<timestamp>]
#   REV        [unset]: build the broker and stompbench from this commit
#              (git archive) instead of the working tree
#   STOMPBENCH [built from ./cmd/stompbench]: a stompbench binary to use instead
#   plus the port and path settings peers.sh reads (see its header).
#
# Transports: Stampede and RabbitMQ are driven over WebSocket (/ws, Web-STOMP
# for RabbitMQ), ActiveMQ and go-stomp over STOMP/TCP, which is all the
# latter two offer here. TRANSPORT_<broker>=tcp|ws overrides one, e.g.
# TRANSPORT_stampede=tcp.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
peers=$here/peers.sh

BROKERS=${BROKERS:-stampede rabbitmq activemq gostomp floor}
SCENARIOS=${SCENARIOS:-fanout fanout-10k queue persistent drain conns}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-15000}
HOLD=${HOLD:-10s}
PREFETCH=${PREFETCH:-1000}
export BENCH_STATE=${BENCH_STATE:-/tmp/stompbench-peers}
# REV=HEAD names a commit once, so the build and env.txt agree even if HEAD
# moves during the run.
if [ -n "${REV:-}" ]; then
	REV_NAME=$REV
	REV=$(git -C "$repo" rev-parse --verify "$REV^{commit}")
	export REV
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=${RESULTS:-$here/results/$stamp}
BIN=$BENCH_STATE/bin

say() { printf '\n==> %s\n' "$*" >&2; }

# scenario KEY prints: the JSON path of its headline figure, whether
# higher or lower is better, a label, then stompbench's arguments.
scenario() {
	case "$1" in
	fanout)
		echo "rate_per_s|higher|delivered/s, 1 pub × 50 sub, max rate|-scenario fanout -publishers 1 -subscribers 50 -size 256 -rate 0"
		;;
	fanout-10k)
		# 200 msgs/s published to 50 subscribers is 10,000 deliveries/s.
		echo "latency_us.p99|lower|p99 µs at 10k deliveries/s|-scenario fanout -publishers 1 -subscribers 50 -size 256 -rate 200"
		;;
	queue)
		echo "rate_per_s|higher|consumed/s, 4 prod × 4 cons, client-individual|-scenario queue -producers 4 -consumers 4 -size 256 -rate 0 -prefetch $PREFETCH"
		;;
	persistent)
		echo "rate_per_s|higher|receipted persistent sends/s, 4 × 4|-scenario persistent -producers 4 -consumers 4 -size 256 -rate 0 -prefetch $PREFETCH"
		;;
	drain)
		# A persistent backlog drained by one consumer that asks a
		# RECEIPT for every ACK: what careful consumers pay.
		echo "rate_per_s|higher|drained/s, 20,000 × 256 B persistent, one consumer, receipted ACKs, prefetch 64|-scenario drain -messages 20000 -size 256 -prefetch 64"
		;;
	conns)
		echo "conns.rss_per_conn_kib|lower|broker KiB RSS per idle connection, $CONNS conns|-scenario conns -conns $CONNS -hold $HOLD"
		;;
	*)
		echo "compare.sh: unknown scenario '$1'" >&2
		return 1
		;;
	esac
}

# broker_args NAME prints stompbench flags a broker needs: go-stomp's
# server never answers a SUBSCRIBE's receipt.
broker_args() {
	case "$1" in
	gostomp) echo "-subscribe-receipt=false" ;;
	esac
}

default_transport() {
	case "$1" in
	stampede | rabbitmq | floor) echo ws ;;
	*) echo tcp ;;
	esac
}

# runs BROKER SCENARIO tells whether the scenario is run on the broker:
# the floor relays topics and nothing else.
runs() {
	[ "$1" != floor ] || [ "$2" = fanout ] || [ "$2" = fanout-10k ]
}

# seconds D turns a Go duration of whole seconds or minutes (10s, 2m) into
# seconds, for the outer timeout.
seconds() {
	case "$1" in
	*ms) echo 1 ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

for s in $SCENARIOS; do scenario "$s" >/dev/null; done
for b in $BROKERS; do
	case "$b" in
	stampede | rabbitmq | activemq | gostomp | floor) ;;
	*) echo "compare.sh: unknown broker '$b'" >&2; exit 2 ;;
	esac
done

say "building stompbench, the broker and the helpers into $BIN"
mkdir -p "$BIN"
(cd "$repo" && go build -o "$BIN/summarize" ./tests/bench/summarize)
rm -f "$BIN/stompbench"
if [ -n "${STOMPBENCH:-}" ]; then
	cp "$STOMPBENCH" "$BIN/stompbench"
else
	(cd "$("$peers" src)" && go build -o "$BIN/stompbench" ./cmd/stompbench)
fi
"$peers" build

for b in $BROKERS; do
	case "$b" in
	rabbitmq | activemq)
		say "installing the peers if they are missing"
		"$peers" install
		break
		;;
	esac
done

# A broker left running by an earlier, interrupted run would hold the ports.
for b in $BROKERS; do "$peers" stop "$b"; done
current=
cleanup() {
	if [ -n "$current" ]; then "$peers" stop "$current" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RESULTS"
{
	echo "date: $stamp"
	if [ -n "${REV:-}" ]; then
		echo "commit: $REV (REV=$REV_NAME)"
	else
		echo "commit: $(git -C "$repo" rev-parse HEAD)$(git -C "$repo" diff --quiet HEAD -- . 2>/dev/null || echo ' plus uncommitted changes in the working tree')"
	fi
	echo "go: $(go version)"
	echo "cpu: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "kernel: $(uname -r)"
	echo "rabbitmq: $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo none)"
	echo "erlang: $(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo none)"
	echo "activemq: $(dpkg-query -W -f '${Version}' activemq 2>/dev/null || echo none)"
	echo "java: $(java -version 2>&1 | head -1)"
	echo "go-stomp: $(cd "$repo" && go list -m -f '{{.Version}}' github.com/go-stomp/stomp/v3)"
	echo "rounds: $ROUNDS, duration: $DURATION, warmup: $WARMUP"
	for b in $BROKERS; do
		t=$(eval "echo \${TRANSPORT_$b:-}")
		echo "transport $b: $("$peers" url "$b" "${t:-$(default_transport "$b")}")"
	done
} >"$RESULTS/env.txt"
printf '# key\tmetric\tbetter\tlabel\n' >"$RESULTS/scenarios.tsv"
printf '# key\tbroker\tround\texit\tjson\n' >"$RESULTS/runs.tsv"

read -r -a brokers <<<"$BROKERS"
nb=${#brokers[@]}
outer=$(($(seconds "$DURATION") + $(seconds "$WARMUP") + $(seconds "$HOLD") + 180))
failures=0
for s in $SCENARIOS; do
	IFS='|' read -r metric better label args <<<"$(scenario "$s")"
	printf '%s\t%s\t%s\t%s\n' "$s" "$metric" "$better" "$label" >>"$RESULTS/scenarios.tsv"
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((i = 0; i < nb; i++)); do
			b=${brokers[$(((i + r - 1) % nb))]}
			runs "$b" "$s" || continue
			t=$(eval "echo \${TRANSPORT_$b:-}")
			url=$("$peers" url "$b" "${t:-$(default_transport "$b")}")
			json=$s.$b.r$r.json
			say "$s, round $r/$ROUNDS: $b at $url"
			current=$b
			if ! "$peers" start "$b" || ! pid=$("$peers" pid "$b"); then
				# Recorded as a failed run (exit 125); the others go on.
				"$peers" stop "$b" || true
				current=
				"$peers" logs "$b" >"$RESULTS/$s.$b.r$r.broker.log" 2>&1 || true
				echo "compare.sh: $b did not start for $s (round $r); see $s.$b.r$r.broker.log" >&2
				failures=$((failures + 1))
				printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$b" "$r" 125 "$json" >>"$RESULTS/runs.tsv"
				continue
			fi
			read -r -a argv <<<"$args $(broker_args "$b")"
			set +e
			timeout --kill-after=10 "$outer" "$BIN/stompbench" "${argv[@]}" -url "$url" -pid "$pid" -label "$b" \
				-warmup "$WARMUP" -duration "$DURATION" -json "$RESULTS/$json" \
				2>&1 | tee "$RESULTS/$s.$b.r$r.log"
			rc=${PIPESTATUS[0]}
			set -e
			"$peers" stop "$b"
			current=
			"$peers" logs "$b" >"$RESULTS/$s.$b.r$r.broker.log" 2>&1 || true
			if [ "$rc" -ne 0 ]; then
				failures=$((failures + 1))
				echo "compare.sh: stompbench exited $rc for $s on $b (round $r)" >&2
			fi
			printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$b" "$r" "$rc" "$json" >>"$RESULTS/runs.tsv"
		done
	done
done

say "results in $RESULTS"
{
	echo "## Broker comparison, $stamp"
	echo
	sed 's/^/    /' "$RESULTS/env.txt"
	echo
	"$BIN/summarize" -dir "$RESULTS"
} | tee "$RESULTS/summary.md"
if [ $failures -gt 0 ]; then
	echo "compare.sh: $failures run(s) exited non-zero; their figures are left out of the medians" >&2
	exit 1
fi
