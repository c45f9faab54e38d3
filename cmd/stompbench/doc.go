// Command stompbench is Stampede's load generator: a neutral STOMP client
// that measures a broker the same way whatever it is (Stampede, RabbitMQ
// Web-STOMP, ActiveMQ, go-stomp's server), over STOMP over WebSocket or
// plain TCP, on the machine the broker runs on.
//
// Usage:
//
//	stompbench -scenario fanout|queue|persistent|drain|conns -url URL [flags]
//	stompbench -scenario crash -url URL [flags] -- BROKER-COMMAND [ARGS]
//
// The URL is ws://HOST:PORT/PATH (the v12.stomp, v11.stomp and v10.stomp
// subprotocols are offered) or tcp://HOST:PORT. Only loopback targets are
// accepted unless -allow-remote is given.
//
// Scenarios:
//
//   - fanout: -subscribers connections subscribe to one topic (ack:auto,
//     each SUBSCRIBE confirmed by a receipt, or given -settle with
//     -subscribe-receipt=false for a broker that sends none), then
//     -publishers connections send to it. Headline: messages delivered
//     per second, summed over subscribers; the latency percentiles (p50,
//     p90, p99, p99.9, max) are those of every subscriber's copy.
//   - queue: -producers send to one queue, -consumers take from it with
//     ack:client-individual (prefetch-count and activemq.prefetchSize set
//     from -prefetch) and ACK every message. Headline: consumed per second.
//   - persistent: queue with persistent:true SENDs that ask for a receipt,
//     at most -window unreceipted per producer. Headline: receipted sends
//     per second; the latency is send→RECEIPT, and lost counts receipted
//     messages that were never delivered.
//   - drain: how fast a consumer empties a persistent queue that is
//     already full. -producers put -messages persistent:true messages in
//     it (20,000 by default, each SEND receipted, at most -window in
//     flight), then -consumers (default 1) subscribe with
//     ack:client-individual and prefetch -prefetch (default 64) and ACK
//     every message, each ACK asking for a RECEIPT without waiting for the
//     previous one's, as a consumer that wants to know its acknowledgements
//     are safe and still wants throughput does. Headline: messages drained
//     per second, from the first SUBSCRIBE to the last ACK's RECEIPT; the
//     latency is ACK→RECEIPT, and every ACK must get exactly one.
//     -ack-receipts=false sends plain ACKs and stops the clock at the last
//     MESSAGE instead. -rate, -warmup and -duration do not apply.
//   - conns: opens -conns idle connections (heart-beat -heartbeat both
//     ways, one goroutine sending every connection's heart-beats), holds
//     them for -hold, then checks each one still answers a DISCONNECT
//     with its RECEIPT. Headline: connections opened per second; with -pid,
//     the broker's RSS growth per connection, which only means something
//     on a freshly started broker (runtimes keep memory they freed).
//     Against a 127.x address, more than 8000 connections are spread over
//     127.0.0.1, 127.0.0.2, … (-local-addrs), so a broker's per-address
//     connection limit is not what gets measured.
//   - crash: a soak of a broker's durability promises. The tool runs the
//     broker itself, as the command after --, which must listen where -url
//     points and keep its data directory across runs. -rounds times it
//     starts the broker, waits for a CONNECT to be answered (within
//     -start-bound), loads it and SIGKILLs it after a random
//     -kill-min..-kill-max. The load: -producers sending persistent:true
//     with a receipt each at -rate in all, at most -window unreceipted;
//     -consumers with client-individual and -prefetch, a share
//     -receipted-acks of their ACKs asking for a RECEIPT; a producer of
//     transactions of -tx-size SENDs (-tx-rate per second, each COMMIT
//     receipted) and a consumer that ACKs in transactions of -tx-size. The
//     first round leaves -backlog messages on DESTINATION.backlog, read
//     only at the end, so every restart is on a data directory that holds
//     them. Each restart first delivers every message receipted before it;
//     after the last round the broker is started once more, both queues
//     are drained and it is stopped with SIGTERM, which must exit 0.
//     Checked throughout: nothing receipted is lost, nothing is delivered
//     after its ACK's (or COMMIT's) RECEIPT, every repeat delivery carries
//     redelivered:true and no transaction is delivered in part. Unless
//     given, the load is 2 producers at 4,000 msgs/s in all, -window 32,
//     2 consumers with -prefetch 64.
//
// Every body starts with a stamp naming the run, the publisher, a
// sequence number and the send time, so the tool measures end-to-end
// latency on its own monotonic clock and counts lost and duplicated
// messages per publisher. Publishing (except in drain) runs for -warmup
// and then -duration;
// rates and latency percentiles cover the -duration window only, lost and
// duplicated the whole run, after a drain that waits for the last messages
// (up to -drain without progress). -rate paces the publishers at a fixed
// total rate, which is how latency should be compared: at an unlimited
// rate queues build up and latency only measures their length.
//
// With -pid the broker's CPU time over the window (from /proc/PID/stat)
// and its RSS are reported beside the tool's own CPU time. A human summary
// goes to stdout, progress once a second to stderr (-quiet turns it off),
// and -json FILE writes the full result as JSON ("-" for stdout, the
// summary then going to stderr).
//
// Exit status: 0 when every message arrived exactly once (crash: when
// every promise held); 1 when one was lost or duplicated (crash: a promise
// broken), a connection failed, an ERROR frame arrived or the run hit
// -timeout; 2 for a usage error.
package main
