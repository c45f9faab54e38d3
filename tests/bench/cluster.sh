#!/usr/bin/env bash
# Measures one node against a three-node cluster on this machine, in
# alternating rounds, with stompbench. Every broker is built from this
# tree without the race detector and runs as our own child process.
#
#   tests/bench/cluster.sh [SCENARIO ...]     (default: fanout queue persistent)
#
# Scenarios, each run once on one node and once on the cluster per round:
#   fanout      1 publisher × 50 subscribers, 256 B, FANOUT_RATE messages/s [12000,
#               i.e. 600k deliveries/s]. On the cluster the publisher is on n1 and
#               every subscriber on n2, so n2's deliveries all come through NATS: its
#               deliveries/s are the "per node" figure. A fixed rate, because core NATS
#               does not hold a publisher back for another node's subscribers (past
#               its buffer a node drops, and disconnects the subscribers it failed).
#   fanout-max  as fanout at the highest rate the subscribers take (one node paces
#               its publisher; on the cluster expect losses, reported as such).
#   queue       4 producers × 4 consumers, client-individual; cluster: producers on n1,
#               consumers on n2 and n3.
#   persistent  as queue, persistent:true with a receipt per SEND.
# For each run the broker's CPU seconds per message are taken from /proc (the
# receiving node's on the cluster, and the publishing node's beside it).
# With RABBITMQ=1, RabbitMQ with Web-STOMP (tests/bench/peers.sh) runs the queue
# and persistent scenarios in the same rounds, as the single-node peer.
#
# Environment: ROUNDS [3], DURATION [10s], STATE [/tmp/stampede-cluster-bench],
# RESULTS [$STATE/results]. Results: one stompbench JSON per run, and
# summary.tsv (scenario, setup, round, rate, cpu µs per message per node).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
STATE=${STATE:-/tmp/stampede-cluster-bench}
RESULTS=${RESULTS:-$STATE/results}
SCENARIOS=${*:-fanout queue persistent}

mkdir -p "$STATE" "$RESULTS"
(cd "$repo" && go build -o "$STATE/broker" ./cmd/broker && go build -o "$STATE/stompbench" ./cmd/stompbench)

pids=()
stop_all() {
	for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
	pids=()
}
trap stop_all EXIT

wait_ready() {
	for _ in $(seq 1 600); do
		if curl -fs "http://$1/readyz" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "cluster.sh: $1 never became ready" >&2
	exit 1
}

# start_single: one node, bbolt, as users run it.
start_single() {
	rm -rf "$STATE/solo"
	"$STATE/broker" --node solo --data "$STATE/solo" --http 127.0.0.1:19080 --stomp "" \
		--max-connections-per-ip 100000 >"$STATE/solo.log" 2>&1 &
	pids=($!)
	wait_ready 127.0.0.1:19080
}

# start_cluster: three nodes with embedded NATS routed on loopback.
start_cluster() {
	local routes=nats://127.0.0.1:19221,nats://127.0.0.1:19222,nats://127.0.0.1:19223
	pids=()
	for i in 1 2 3; do
		rm -rf "$STATE/n$i"
		"$STATE/broker" --node "n$i" --data "$STATE/n$i" --http "127.0.0.1:1908$i" --stomp "" \
			--max-connections-per-ip 100000 --nats-embedded --nats-cluster "127.0.0.1:1922$i" \
			--nats-routes "$routes" >"$STATE/n$i.log" 2>&1 &
		pids+=($!)
	done
	for i in 1 2 3; do wait_ready "127.0.0.1:1908$i"; done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

args_for() {
	case $1 in
	fanout) echo "-scenario fanout -publishers 1 -subscribers 50 -size 256 -rate ${FANOUT_RATE:-12000}" ;;
	fanout-max) echo "-scenario fanout -publishers 1 -subscribers 50 -size 256 -rate 0" ;;
	queue) echo "-scenario queue -producers 4 -consumers 4 -size 256 -rate 0 -prefetch 100" ;;
	persistent) echo "-scenario persistent -producers 4 -consumers 4 -size 256 -rate 0 -prefetch 100" ;;
	*) echo "cluster.sh: unknown scenario $1" >&2; exit 2 ;;
	esac
}

# run SCENARIO SETUP ROUND: one measured run; prints a summary line.
run() {
	local s=$1 setup=$2 round=$3 url receivers recv_pid pub_pid
	if [ "$setup" = rabbitmq ]; then
		case $s in fanout*) return ;; esac
		url=$("$here/peers.sh" url rabbitmq ws) receivers=""
		recv_pid=$("$here/peers.sh" pid rabbitmq) pub_pid=$recv_pid
	elif [ "$setup" = single ]; then
		url=ws://127.0.0.1:19080/ws receivers="" recv_pid=${pids[0]} pub_pid=${pids[0]}
	else
		url=ws://127.0.0.1:19081/ws recv_pid=${pids[1]} pub_pid=${pids[0]}
		receivers=ws://127.0.0.1:19082/ws
		case $s in fanout*) ;; *) receivers=ws://127.0.0.1:19082/ws,ws://127.0.0.1:19083/ws ;; esac
		: =ws://127.0.0.1:19082/ws,ws://127.0.0.1:19083/ws
	fi
	local out="$RESULTS/$s-$setup-$round.json" t0r t0p
	t0r=$(cpu_ticks "$recv_pid") t0p=$(cpu_ticks "$pub_pid")
	# shellcheck disable=SC2046
	"$STAMPEDE_BENCH" $(args_for "$s") -url "$url" ${receivers:+-receiver-urls "$receivers"} \
		-duration "$DURATION" -quiet -label "$setup" -json "$out" >/dev/null 2>"$out.err" || true
	local ticks hz
	hz=$(getconf CLK_TCK)
	ticks=$(( $(cpu_ticks "$recv_pid") - t0r ))
	local pticks=$(( $(cpu_ticks "$pub_pid") - t0p ))
	python3 - "$s" "$setup" "$round" "$ticks" "$pticks" "$hz" "$out" <<'EOF' | tee -a "$RESULTS/summary.tsv"
import json, sys
s, setup, rnd, ticks, pticks, hz, out = sys.argv[1:]
r = json.load(open(out))
# The report's counts cover the whole run, warm-up and drain included, as
# the CPU ticks do: CPU per message delivered (or consumed) on the
# receiving node, and per message published on the publishing one. On one
# node both are the same process, so its two figures are the same CPU
# divided two ways.
got = max(r["delivered"], r["consumed"], 1)
sent = max(r["published"], 1)
bad = r["lost"] + r["duplicated"] + r["errors"]
lat = r.get("latency_us") or {}
print(f"{s}\t{setup}\t{rnd}\t{r['rate_per_s']:.0f}\t{lat.get('p50', 0):.0f}\t{lat.get('p99', 0):.0f}\t{int(ticks)/int(hz)/got*1e6:.2f}\t{int(pticks)/int(hz)/sent*1e6:.2f}\t{bad}")
EOF
}

STAMPEDE_BENCH=$STATE/stompbench
printf 'scenario\tsetup\tround\trate_per_s\tp50_us\tp99_us\tcpu_us_per_received\tcpu_us_per_published\tlost_dup_err\n' >"$RESULTS/summary.tsv"
SETUPS="single cluster"
[ "${RABBITMQ:-0}" = 1 ] && SETUPS="$SETUPS rabbitmq"
for round in $(seq 1 "$ROUNDS"); do
	for setup in $SETUPS; do
		case $setup in
		single) start_single ;;
		cluster) start_cluster ;;
		rabbitmq) "$here/peers.sh" start rabbitmq ;;
		esac
		for s in $SCENARIOS; do run "$s" "$setup" "$round"; done
		if [ "$setup" = rabbitmq ]; then "$here/peers.sh" stop rabbitmq; else stop_all; fi
	done
done
