#!/usr/bin/env bash
# Starts, stops and describes the brokers that tests/bench/compare.sh runs
# side by side: Stampede (this repository), RabbitMQ 3.10 with Web-STOMP,
# ActiveMQ 5.17 (Classic), go-stomp's reference server, and the fan-out
# floor (tests/bench/relay, not a broker: the least any server can do to
# pass a topic message on, for the fanout scenarios only). Each broker runs
# as our own child process with its configuration and data in a fresh
# directory under $BENCH_STATE, so a run depends on neither systemd nor
# whatever /etc or /var/lib hold.
#
#   peers.sh install            apt-get install RabbitMQ and ActiveMQ if missing
#   peers.sh build              go build the broker, gostompd, relay and stompcheck
#   peers.sh src                the source tree the broker is built from
#   peers.sh start NAME         start NAME, wait until it takes a STOMP CONNECT
#   peers.sh stop NAME          stop NAME and wait until it has exited
#   peers.sh restart NAME
#   peers.sh pid NAME           PID of the process doing the work (beam.smp, java)
#   peers.sh url NAME [ws|tcp]  URL the comparison uses (ws for Stampede and
#                               RabbitMQ, tcp for ActiveMQ and go-stomp)
#   peers.sh check NAME         CONNECT plus a topic and a queue round trip on
#                               every transport NAME offers
#   peers.sh logs NAME          what NAME logged since it last started
#   peers.sh status             which brokers are running
#
# NAME is stampede, rabbitmq, activemq, gostomp or floor. Ports and paths come from
# the environment (defaults in brackets):
#   STAMPEDE_HTTP [127.0.0.1:8080]  STAMPEDE_STOMP [127.0.0.1:61613]
#   RABBITMQ_WS_PORT [15674]  RABBITMQ_STOMP_PORT [61623]
#   RABBITMQ_DIST_PORT [25672]  RABBITMQ_NODE [stompbench@localhost]
#   ACTIVEMQ_STOMP_PORT [61625]  ACTIVEMQ_TRANSPORT [stomp+nio]  ACTIVEMQ_HEAP [1G]
#   GOSTOMP_ADDR [127.0.0.1:61615]  FLOOR_ADDR [127.0.0.1:61617]
#   BENCH_STATE [/tmp/stompbench-peers]: per-broker state, logs and binaries
#   START_TIMEOUT [120] seconds a broker has to come up
#   REV [unset]: build the broker from this commit instead of the working tree
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

STAMPEDE_HTTP=${STAMPEDE_HTTP:-127.0.0.1:8080}
STAMPEDE_STOMP=${STAMPEDE_STOMP:-127.0.0.1:61613}
RABBITMQ_WS_PORT=${RABBITMQ_WS_PORT:-15674}
RABBITMQ_STOMP_PORT=${RABBITMQ_STOMP_PORT:-61623}
RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-25672}
RABBITMQ_NODE=${RABBITMQ_NODE:-stompbench@localhost}
ACTIVEMQ_STOMP_PORT=${ACTIVEMQ_STOMP_PORT:-61625}
ACTIVEMQ_TRANSPORT=${ACTIVEMQ_TRANSPORT:-stomp+nio}
ACTIVEMQ_HEAP=${ACTIVEMQ_HEAP:-1G}
GOSTOMP_ADDR=${GOSTOMP_ADDR:-127.0.0.1:61615}
FLOOR_ADDR=${FLOOR_ADDR:-127.0.0.1:61617}
BENCH_STATE=${BENCH_STATE:-/tmp/stompbench-peers}
START_TIMEOUT=${START_TIMEOUT:-120}

BIN=$BENCH_STATE/bin
BROKERS="stampede rabbitmq activemq gostomp floor"
RABBITMQ_LIB=/usr/lib/rabbitmq/bin
ACTIVEMQ_HOME=/usr/share/activemq

die() { echo "peers.sh: $*" >&2; exit 1; }
note() { echo "peers.sh: $*" >&2; }

check_name() {
	case "${1:-}" in
	stampede | rabbitmq | activemq | gostomp | floor) ;;
	*) die "unknown broker '${1:-}': want one of $BROKERS" ;;
	esac
}

# raise_nofile N raises the open-file limit to N, or to the hard limit when
# N is above it (raising the hard limit needs privileges a container may
# not give, even to root).
raise_nofile() {
	ulimit -n "$1" 2>/dev/null && return 0
	local hard
	hard=$(ulimit -Hn)
	note "cannot raise the open-file limit to $1; using the hard limit $hard"
	ulimit -n "$hard"
}

apt_get() {
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get "$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n env DEBIAN_FRONTEND=noninteractive apt-get "$@"
	else
		die "need root or sudo to run: apt-get $*"
	fi
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

cmd_install() {
	local missing=()
	[ -x "$RABBITMQ_LIB/rabbitmq-server" ] || missing+=(rabbitmq-server)
	[ -f "$ACTIVEMQ_HOME/bin/activemq.jar" ] || missing+=(activemq)
	command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
	if [ ${#missing[@]} -gt 0 ]; then
		apt_get update
		apt_get install -y "${missing[@]}"
	fi
	# Our own runs read $BENCH_STATE/rabbitmq/enabled_plugins; this also
	# enables Web-STOMP for the packaged node, offline (no node running).
	as_root /usr/sbin/rabbitmq-plugins enable --offline rabbitmq_web_stomp >/dev/null
	# Where systemd runs, the packages start their own services, and the
	# packaged RabbitMQ with STOMP enabled would hold 61613 and 15674.
	local svc
	for svc in rabbitmq-server activemq; do
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
			note "the packaged $svc service is running and may hold the ports used here; stop it with: systemctl stop $svc"
		fi
	done
}

# cmd_src prints the source tree the broker is built from: the working
# tree, or with REV set the files of that commit, exported once into
# $BENCH_STATE/src (so a half-edited working tree cannot break a run, and
# the results name exactly what was measured).
cmd_src() {
	if [ -z "${REV:-}" ]; then
		echo "$repo"
		return
	fi
	local sha d
	sha=$(git -C "$repo" rev-parse --verify "$REV^{commit}") || die "REV=$REV is not a commit"
	d=$BENCH_STATE/src/$sha
	if [ ! -d "$d" ]; then
		rm -rf "$d.tmp"
		mkdir -p "$d.tmp"
		git -C "$repo" archive "$sha" | tar -x -C "$d.tmp"
		mv "$d.tmp" "$d"
	fi
	echo "$d"
}

# The helpers depend on go-stomp and gorilla/websocket only, so they build
# from the working tree whatever state the broker's packages are in.
cmd_build() {
	mkdir -p "$BIN"
	(cd "$repo" && go build -o "$BIN/gostompd" ./tests/bench/gostompd &&
		go build -o "$BIN/relay" ./tests/bench/relay &&
		go build -o "$BIN/stompcheck" ./tests/bench/stompcheck)
	local src
	src=$(cmd_src)
	# Not -race: the race detector would slow the broker several times.
	(cd "$src" && go build -o "$BIN/broker" ./cmd/broker)
}

need_bin() {
	[ -x "$BIN/$1" ] || cmd_build
}

# url NAME [ws|tcp]
cmd_url() {
	check_name "$1"
	local t=${2:-}
	case "$1:$t" in
	stampede: | stampede:ws) echo "ws://$STAMPEDE_HTTP/ws" ;;
	stampede:tcp) echo "tcp://$STAMPEDE_STOMP" ;;
	rabbitmq: | rabbitmq:ws) echo "ws://127.0.0.1:$RABBITMQ_WS_PORT/ws" ;;
	rabbitmq:tcp) echo "tcp://127.0.0.1:$RABBITMQ_STOMP_PORT" ;;
	activemq: | activemq:tcp) echo "tcp://127.0.0.1:$ACTIVEMQ_STOMP_PORT" ;;
	gostomp: | gostomp:tcp) echo "tcp://$GOSTOMP_ADDR" ;;
	floor: | floor:ws) echo "ws://$FLOOR_ADDR/ws" ;;
	*) die "$1 has no '$t' transport here" ;;
	esac
}

transports() {
	case "$1" in
	stampede | rabbitmq) echo "ws tcp" ;;
	floor) echo "ws" ;;
	*) echo "tcp" ;;
	esac
}

pidfile() { echo "$BENCH_STATE/$1/pid"; }

# The PID file holds the process we started; for RabbitMQ that is a shell
# wrapper, and the node writes beam.smp's PID to its own file.
cmd_pid() {
	check_name "$1"
	local f
	f=$(pidfile "$1")
	if [ "$1" = rabbitmq ]; then
		f=$BENCH_STATE/rabbitmq/beam.pid
	fi
	[ -s "$f" ] || die "$1 is not running (no $f)"
	local pid
	pid=$(cat "$f")
	alive "$pid" || die "$1 is not running (PID $pid is gone)"
	echo "$pid"
}

running() { (cmd_pid "$1") >/dev/null 2>&1; }

# wait_port HOST:PORT SECONDS waits until something accepts on it.
wait_port() {
	local host=${1%:*} port=${1##*:} deadline=$((SECONDS + $2))
	until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

port_free() {
	local host=${1%:*} port=${1##*:}
	! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# wait_ready NAME: the port answers and a STOMP CONNECT succeeds on every
# transport the broker offers.
wait_ready() {
	local name=$1 deadline=$((SECONDS + START_TIMEOUT)) t url hostport
	for t in $(transports "$name"); do
		url=$(cmd_url "$name" "$t")
		hostport=${url#*://}
		hostport=${hostport%%/*}
		wait_port "$hostport" $((deadline - SECONDS)) || {
			note "$name: nothing listens on $hostport after ${START_TIMEOUT}s; log: $BENCH_STATE/$name/out.log"
			tail -20 "$BENCH_STATE/$name/out.log" >&2 || true
			return 1
		}
		until "$BIN/stompcheck" -url "$url" -timeout 5s >/dev/null 2>"$BENCH_STATE/$name/check.err"; do
			if [ $SECONDS -ge $deadline ] || ! running "$name"; then
				note "$name: no STOMP CONNECT on $url: $(cat "$BENCH_STATE/$name/check.err")"
				return 1
			fi
			sleep 0.5
		done
	done
}

# spawn NAME NOFILE CMD... starts CMD in its own session with its output
# in $BENCH_STATE/NAME/out.log and records its PID.
spawn() {
	local name=$1 nofile=$2
	shift 2
	(
		raise_nofile "$nofile"
		cd "$BENCH_STATE/$name"
		exec setsid "$@" </dev/null >>"$BENCH_STATE/$name/out.log" 2>&1
	) &
	echo $! >"$(pidfile "$name")"
}

fresh_dir() {
	rm -rf "${BENCH_STATE:?}/$1"
	mkdir -p "$BENCH_STATE/$1"
}

start_stampede() {
	need_bin broker
	fresh_dir stampede
	# Every benchmark connection comes from 127.0.0.1: the per-IP cap
	# (10,000 by default) would refuse part of the 15,000-connection run.
	spawn stampede 65536 "$BIN/broker" -data "$BENCH_STATE/stampede/data" \
		-http "$STAMPEDE_HTTP" -stomp "$STAMPEDE_STOMP" \
		-max-connections-per-ip 100000
}

start_gostomp() {
	need_bin gostompd
	fresh_dir gostomp
	spawn gostomp 65536 "$BIN/gostompd" -addr "$GOSTOMP_ADDR"
}

start_floor() {
	need_bin relay
	fresh_dir floor
	spawn floor 65536 "$BIN/relay" -addr "$FLOOR_ADDR"
}

start_rabbitmq() {
	[ -x "$RABBITMQ_LIB/rabbitmq-server" ] || die "RabbitMQ is not installed: run peers.sh install"
	local d=$BENCH_STATE/rabbitmq
	fresh_dir rabbitmq
	mkdir -p "$d/mnesia" "$d/log"
	# AMQP is off: the benchmark speaks STOMP only. STOMP/TCP moves off
	# 61613, where Stampede listens. guest/guest is allowed from loopback
	# by default, and "/" is the default vhost and the one stompbench names.
	cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp = none
loopback_users.guest = true
stomp.listeners.tcp.1 = 127.0.0.1:$RABBITMQ_STOMP_PORT
stomp.default_vhost = /
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $RABBITMQ_WS_PORT
web_stomp.ws_path = /ws
web_stomp.max_connections = infinity
log.file.level = warning
log.console = false
EOF
	echo '[rabbitmq_stomp,rabbitmq_web_stomp].' >"$d/enabled_plugins"
	# rabbitmq-server as root runs the node as root; $HOME/.erlang.cookie
	# is shared with rabbitmqctl below.
	spawn rabbitmq 20000 env \
		RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
		RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
		RABBITMQ_MNESIA_BASE="$d/mnesia" \
		RABBITMQ_LOG_BASE="$d/log" \
		RABBITMQ_PID_FILE="$d/beam.pid" \
		RABBITMQ_NODENAME="$RABBITMQ_NODE" \
		RABBITMQ_DIST_PORT="$RABBITMQ_DIST_PORT" \
		"$RABBITMQ_LIB/rabbitmq-server"
	# The node writes beam.smp's PID once the VM is up; await_startup then
	# waits for the boot to finish.
	local deadline=$((SECONDS + START_TIMEOUT))
	until [ -s "$d/beam.pid" ]; do
		if [ $SECONDS -ge $deadline ] || ! alive "$(cat "$d/pid")"; then
			tail -30 "$d/out.log" >&2
			die "rabbitmq did not start; log: $d/out.log"
		fi
		sleep 0.2
	done
	rabbitmqctl_ await_startup --timeout "$START_TIMEOUT" >/dev/null ||
		die "rabbitmq did not finish booting; logs: $d/out.log $d/log/"
}

rabbitmqctl_() {
	RABBITMQ_NODENAME=$RABBITMQ_NODE "$RABBITMQ_LIB/rabbitmqctl" -n "$RABBITMQ_NODE" "$@"
}

start_activemq() {
	[ -f "$ACTIVEMQ_HOME/bin/activemq.jar" ] || die "ActiveMQ is not installed: run peers.sh install"
	local d=$BENCH_STATE/activemq
	fresh_dir activemq
	mkdir -p "$d/conf" "$d/data" "$d/tmp"
	# Debian's ActiveMQ logs through log4j 1.2: warnings to out.log, the
	# rest to data/activemq.log.
	cat >"$d/conf/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, logfile, console
log4j.logger.org.apache.activemq.spring=WARN
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.Threshold=WARN
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d | %-5p | %m | %c%n
log4j.appender.logfile=org.apache.log4j.FileAppender
log4j.appender.logfile.File=${activemq.data}/activemq.log
log4j.appender.logfile.layout=org.apache.log4j.PatternLayout
log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
EOF
	# One STOMP connector, no OpenWire, no JMX, no authentication plugin
	# (any login is accepted). Persistence is the default KahaDB with its
	# default journal fsync on every persistent write (enableJournalDiskSyncs).
	# stomp+nio serves connections from a small selector thread pool;
	# plain stomp:// gives every connection its own reader thread, which at
	# 15,000 idle connections measures thread stacks more than the broker.
	cat >"$d/conf/activemq.xml" <<EOF
<beans
  xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="stompbench"
          useJmx="false" persistent="true" dataDirectory="\${activemq.data}">
    <persistenceAdapter>
      <kahaDB directory="\${activemq.data}/kahadb"/>
    </persistenceAdapter>
    <transportConnectors>
      <transportConnector name="stomp"
        uri="$ACTIVEMQ_TRANSPORT://127.0.0.1:$ACTIVEMQ_STOMP_PORT?maximumConnections=100000&amp;wireFormat.maxFrameSize=104857600"/>
    </transportConnectors>
  </broker>
</beans>
EOF
	local java
	java=$(command -v java) || die "java is not installed"
	# The same JVM flags /usr/bin/activemq passes on Java 9 and later,
	# without Debian's -Dorg.apache.activemq.UseDedicatedTaskRunner=true
	# (a thread per connection; upstream's default is false).
	spawn activemq 20000 "$java" -Xms512M "-Xmx$ACTIVEMQ_HEAP" \
		-Djava.awt.headless=true -Djava.io.tmpdir="$d/tmp" \
		--add-reads=java.xml=java.logging \
		--add-opens java.base/java.security=ALL-UNNAMED \
		--add-opens java.base/java.net=ALL-UNNAMED \
		--add-opens java.base/java.lang=ALL-UNNAMED \
		--add-opens java.base/java.util=ALL-UNNAMED \
		--add-opens java.naming/javax.naming.spi=ALL-UNNAMED \
		--add-opens java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED \
		--add-opens java.base/java.util.concurrent=ALL-UNNAMED \
		--add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED \
		--add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED \
		--add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED \
		--add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED \
		--add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED \
		--add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED \
		-Dactivemq.classpath="$d/conf:" \
		-Dactivemq.home="$ACTIVEMQ_HOME" \
		-Dactivemq.base="$d" \
		-Dactivemq.conf="$d/conf" \
		-Dactivemq.data="$d/data" \
		-jar "$ACTIVEMQ_HOME/bin/activemq.jar" start "xbean:file:$d/conf/activemq.xml"
}

listen_addrs() {
	local t url hostport
	for t in $(transports "$1"); do
		url=$(cmd_url "$1" "$t")
		hostport=${url#*://}
		echo "${hostport%%/*}"
	done
}

cmd_start() {
	check_name "$1"
	if running "$1"; then
		die "$1 is already running (PID $(cmd_pid "$1")); stop it first"
	fi
	need_bin stompcheck
	local a lo hi
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=
	for a in $(listen_addrs "$1"); do
		port_free "$a" || die "$a is taken by another process; pick another port (see peers.sh's header)"
		# The conns scenario's 15,000 client sockets take ephemeral ports;
		# a listen port among them may be in use when the broker binds.
		if [ -n "$lo" ] && [ "${a##*:}" -ge "$lo" ] && [ "${a##*:}" -le "$hi" ]; then
			note "warning: $a is in the ephemeral port range $lo-$hi; after a run with many connections the broker may fail to bind it"
		fi
	done
	"start_$1"
	if ! wait_ready "$1"; then
		cmd_stop "$1" || true
		die "$1 did not become ready"
	fi
	note "$1 is up (PID $(cmd_pid "$1")) at $(cmd_url "$1")"
}

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ "$st" != Z ]
}

# wait_gone PID SECONDS
wait_gone() {
	local deadline=$((SECONDS + $2))
	while alive "$1"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

cmd_stop() {
	check_name "$1"
	local f pid work=
	f=$(pidfile "$1")
	[ -s "$f" ] || return 0
	pid=$(cat "$f")
	work=$(cmd_pid "$1" 2>/dev/null) || true
	if [ "$1" = rabbitmq ] && [ -n "$work" ]; then
		rabbitmqctl_ stop >/dev/null 2>&1 || true
	fi
	for p in $pid $work; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $pid $work; do
		if ! wait_gone "$p" 30; then
			note "$1: PID $p still there 30s after SIGTERM; killing it"
			kill -KILL "$p" 2>/dev/null || true
			wait_gone "$p" 10 || die "$1: PID $p survived SIGKILL"
		fi
	done
	rm -f "$f" "$BENCH_STATE/$1/beam.pid"
	# The ports must be free before the next broker starts on them.
	local a deadline=$((SECONDS + 30))
	for a in $(listen_addrs "$1"); do
		until port_free "$a"; do
			[ $SECONDS -lt $deadline ] || die "$1 stopped but $a still accepts connections"
			sleep 0.2
		done
	done
}

cmd_check() {
	check_name "$1"
	need_bin stompcheck
	local t
	for t in $(transports "$1"); do
		"$BIN/stompcheck" -roundtrip -url "$(cmd_url "$1" "$t")"
	done
}

# cmd_logs prints what NAME logged since it was last started: its output
# and, for RabbitMQ and ActiveMQ, their own log files.
cmd_logs() {
	check_name "$1"
	local d=$BENCH_STATE/$1 f
	for f in "$d/out.log" "$d"/log/*.log "$d/data/activemq.log"; do
		[ -f "$f" ] || continue
		echo "--- $f"
		cat "$f"
	done
}

cmd_status() {
	local n
	for n in $BROKERS; do
		if running "$n"; then
			echo "$n running, PID $(cmd_pid "$n"), $(cmd_url "$n")"
		else
			echo "$n stopped"
		fi
	done
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
install) cmd_install ;;
build) cmd_build ;;
src) cmd_src ;;
start) [ $# -eq 1 ] || usage; cmd_start "$1" ;;
stop) [ $# -eq 1 ] || usage; cmd_stop "$1" ;;
restart) [ $# -eq 1 ] || usage; cmd_stop "$1"; cmd_start "$1" ;;
pid) [ $# -eq 1 ] || usage; cmd_pid "$1" ;;
url)
	if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
	cmd_url "$@"
	;;
check) [ $# -eq 1 ] || usage; cmd_check "$1" ;;
logs) [ $# -eq 1 ] || usage; cmd_logs "$1" ;;
status) cmd_status ;;
*) usage ;;
esac
