// Package cluster makes brokers one cluster through NATS JetStream. It
// implements broker.Cluster: topic messages travel on core NATS subjects,
// queues and durable subscriptions are JetStream streams and consumers
// shared by every node, and client-id claims are entries of a key-value
// bucket. Each node keeps serving its own clients itself; this package
// only carries what crosses nodes. Server runs an embedded NATS server
// when the cluster has no NATS deployment of its own.
package cluster
