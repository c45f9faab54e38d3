package web

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// maxShownBody is how much of a message body peek and tail show; the
// rest is cut (size tells the whole length), so peeking at a thousand
// large messages stays a small response.
const maxShownBody = 64 << 10

// maxPublishBytes bounds a publish request: a 4 MiB body, base64 and
// headers fit.
const maxPublishBytes = 8 << 20

// overviewJSON is GET /api/v1/overview.
type overviewJSON struct {
	UptimeSeconds float64   `json:"uptime_seconds"`
	StartedAt     time.Time `json:"started_at"`
	Connections   int       `json:"connections"`
	Sessions      struct {
		ByTransport map[string]int `json:"by_transport"`
		// ByVersion counts sessions by negotiated STOMP version;
		// "connecting" are those that have not sent CONNECT yet.
		ByVersion map[string]int `json:"by_version"`
	} `json:"sessions"`
	Destinations            int     `json:"destinations"`
	Queues                  int     `json:"queues"`
	Topics                  int     `json:"topics"`
	TopicSubscriptions      int     `json:"topic_subscriptions"`
	TopicHistoryBytes       int64   `json:"topic_history_bytes"`
	TopicHistoryTopics      int     `json:"topic_history_topics"`
	DurableSubscriptions    int     `json:"durable_subscriptions"`
	MessagesIn              uint64  `json:"messages_in"`
	MessagesOut             uint64  `json:"messages_out"`
	MessagesInPerSecond     float64 `json:"messages_in_per_second"`
	MessagesOutPerSecond    float64 `json:"messages_out_per_second"`
	MessagesWaiting         int     `json:"messages_waiting"`
	MessagesUnacked         int     `json:"messages_unacked"`
	Expired                 uint64  `json:"expired"`
	DeadLettered            uint64  `json:"dead_lettered"`
	SlowConsumerDisconnects uint64  `json:"slow_consumer_disconnects"`
	// OutboundBytes is what waits in connections' outbound queues.
	OutboundBytes int64 `json:"outbound_bytes"`
	// StoreBytes is null when the store cannot tell its size.
	StoreBytes *int64 `json:"store_bytes"`
	// Memory is what the memory alarm reads; while Alarm is set,
	// publishers are paused.
	Memory struct {
		Bytes         int64 `json:"bytes"`
		HighWatermark int64 `json:"high_watermark_bytes"`
		Alarm         bool  `json:"alarm"`
	} `json:"memory"`
	Go struct {
		Version    string `json:"version"`
		HeapBytes  uint64 `json:"heap_bytes"`
		Goroutines int    `json:"goroutines"`
	} `json:"go"`
}

func (s *Server) getOverview(w http.ResponseWriter, r *http.Request) error {
	st := s.b.Stats()
	var o overviewJSON
	o.UptimeSeconds = st.Uptime.Seconds()
	o.Memory.Bytes, o.Memory.HighWatermark, o.Memory.Alarm = st.MemoryBytes, st.MemoryHighWatermark, st.MemoryAlarm
	o.StartedAt = time.Now().Add(-st.Uptime).UTC().Truncate(time.Second)
	o.Sessions.ByTransport = map[string]int{}
	o.Sessions.ByVersion = map[string]int{}
	conns := s.b.Connections()
	o.Connections = len(conns)
	for _, c := range conns {
		o.Sessions.ByTransport[c.Transport]++
		o.Sessions.ByVersion[cmp.Or(c.Version, "connecting")]++
		o.OutboundBytes += int64(c.OutboundBytes)
	}
	for _, d := range s.b.Destinations() {
		if d.Type == "queue" {
			o.MessagesWaiting += d.Depth
			o.MessagesUnacked += d.Unacked
		}
		if !publicName(d.Name) {
			continue
		}
		o.Destinations++
		if d.Type == "queue" {
			o.Queues++
		} else {
			o.Topics++
		}
	}
	o.DurableSubscriptions = len(s.b.Durables())
	o.TopicSubscriptions = st.Subscriptions
	o.TopicHistoryBytes, o.TopicHistoryTopics = st.HistoryBytes, st.HistoryTopics
	o.MessagesIn, o.MessagesOut = st.Published, st.Delivered
	if last, ok := s.sampler.latest(); ok {
		o.MessagesInPerSecond, o.MessagesOutPerSecond = last.In, last.Out
	}
	o.Expired, o.DeadLettered, o.SlowConsumerDisconnects = st.Expired, st.DeadLettered, st.SlowConsumers
	if s.opts.StoreSize != nil {
		if n, err := s.opts.StoreSize(); err == nil {
			o.StoreBytes = &n
		}
	}
	o.Go.Version = runtime.Version()
	o.Go.HeapBytes = heapBytes()
	o.Go.Goroutines = runtime.NumGoroutine()
	writeJSON(w, http.StatusOK, o)
	return nil
}

// connectionJSON is one connection in the API.
type connectionJSON struct {
	ID          string `json:"id"`
	Node        string `json:"node,omitempty"` // in a cluster
	RemoteAddr  string `json:"remote_addr"`
	User        string `json:"user"`
	ClientID    string `json:"client_id"`
	Transport   string `json:"transport"`
	Subprotocol string `json:"subprotocol"`
	Version     string `json:"version"`
	// HeartBeatOutMs is how often the broker sends heart-beats,
	// HeartBeatInMs how often it expects them; 0 is off.
	HeartBeatOutMs   int64     `json:"heartbeat_out_ms"`
	HeartBeatInMs    int64     `json:"heartbeat_in_ms"`
	Subscriptions    int       `json:"subscriptions"`
	MessagesIn       uint64    `json:"messages_in"`
	MessagesOut      uint64    `json:"messages_out"`
	OutboundBytes    int       `json:"outbound_bytes"`
	OutboundMax      int       `json:"outbound_max"`
	OutboundFill     float64   `json:"outbound_fill"`
	ConnectedAt      time.Time `json:"connected_at"`
	ConnectedSeconds float64   `json:"connected_seconds"`
}

func connectionOf(c broker.ConnectionInfo, now time.Time) connectionJSON {
	j := connectionJSON{
		ID: c.ID, Node: c.Node, RemoteAddr: c.RemoteAddr, User: c.User, ClientID: c.ClientID,
		Transport: c.Transport, Subprotocol: c.Subprotocol, Version: c.Version,
		HeartBeatOutMs: c.HeartBeatOut.Milliseconds(), HeartBeatInMs: c.HeartBeatIn.Milliseconds(),
		Subscriptions: c.Subscriptions, MessagesIn: c.MessagesIn, MessagesOut: c.MessagesOut,
		OutboundBytes: c.OutboundBytes, OutboundMax: c.OutboundMax,
		ConnectedAt:      c.ConnectedAt.UTC(),
		ConnectedSeconds: now.Sub(c.ConnectedAt).Seconds(),
	}
	if c.OutboundMax > 0 {
		j.OutboundFill = float64(c.OutboundBytes) / float64(c.OutboundMax)
	}
	return j
}

func connectionSorts() sortKeys[connectionJSON] {
	return sortKeys[connectionJSON]{
		"connected_at":   func(a, b connectionJSON) int { return a.ConnectedAt.Compare(b.ConnectedAt) },
		"id":             by(func(c connectionJSON) string { return c.ID }),
		"node":           by(func(c connectionJSON) string { return c.Node }),
		"remote_addr":    by(func(c connectionJSON) string { return c.RemoteAddr }),
		"user":           by(func(c connectionJSON) string { return c.User }),
		"client_id":      by(func(c connectionJSON) string { return c.ClientID }),
		"transport":      by(func(c connectionJSON) string { return c.Transport }),
		"version":        by(func(c connectionJSON) string { return c.Version }),
		"subscriptions":  by(func(c connectionJSON) int { return c.Subscriptions }),
		"messages_in":    by(func(c connectionJSON) uint64 { return c.MessagesIn }),
		"messages_out":   by(func(c connectionJSON) uint64 { return c.MessagesOut }),
		"outbound_bytes": by(func(c connectionJSON) int { return c.OutboundBytes }),
		"outbound_fill":  by(func(c connectionJSON) float64 { return c.OutboundFill }),
	}
}

func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) error {
	keys := connectionSorts()
	lq, err := parseList(r, keys, "connected_at")
	if err != nil {
		return err
	}
	now := time.Now()
	all := s.b.Connections()
	items := make([]connectionJSON, 0, len(all))
	for _, c := range all {
		if matches(lq.filter, c.ID, c.Node, c.RemoteAddr, c.User, c.ClientID, c.Transport, c.Subprotocol, c.Version) {
			items = append(items, connectionOf(c, now))
		}
	}
	writeJSON(w, http.StatusOK, paginate(items, lq, keys))
	return nil
}

func (s *Server) findConnection(id string) (broker.ConnectionInfo, error) {
	for _, c := range s.b.Connections() {
		if c.ID == id {
			return c, nil
		}
	}
	return broker.ConnectionInfo{}, errNotFound("no connection " + strconv.Quote(id))
}

func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) error {
	c, err := s.findConnection(r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, connectionOf(c, time.Now()))
	return nil
}

// closeConnection ends a connection with an ERROR; ?reason= is what the
// client reads in it.
func (s *Server) closeConnection(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	reason := cleanText(r.URL.Query().Get("reason"), 200)
	if reason == "" {
		reason = "connection closed by an administrator"
	}
	if err := s.b.CloseConnection(id, reason); err != nil {
		if errors.Is(err, broker.ErrNotFound) {
			return errNotFound("no connection " + strconv.Quote(id))
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cleanText makes operator text safe for a STOMP header in any version
// (1.0 cannot escape line breaks) and bounds its length.
func cleanText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.TrimSpace(s)
}

// destinationJSON is one destination in the API.
type destinationJSON struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Depth     int    `json:"depth"`
	Consumers int    `json:"consumers"`
	Enqueued  uint64 `json:"enqueued"`
	Dequeued  uint64 `json:"dequeued"`
	Unacked   int    `json:"unacked"`
	// OldestAgeSeconds is how long the oldest waiting message has
	// waited; 0 when none waits.
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	DLQ              bool    `json:"dlq"`
}

func destinationOf(d broker.DestinationInfo) destinationJSON {
	return destinationJSON{
		Name: d.Name, Type: d.Type, Depth: d.Depth, Consumers: d.Consumers,
		Enqueued: d.Enqueued, Dequeued: d.Dequeued, Unacked: d.Unacked,
		OldestAgeSeconds: d.OldestAge.Seconds(), DLQ: d.DLQ,
	}
}

func destinationSorts() sortKeys[destinationJSON] {
	return sortKeys[destinationJSON]{
		"name":       by(func(d destinationJSON) string { return d.Name }),
		"type":       by(func(d destinationJSON) string { return d.Type }),
		"depth":      by(func(d destinationJSON) int { return d.Depth }),
		"consumers":  by(func(d destinationJSON) int { return d.Consumers }),
		"enqueued":   by(func(d destinationJSON) uint64 { return d.Enqueued }),
		"dequeued":   by(func(d destinationJSON) uint64 { return d.Dequeued }),
		"unacked":    by(func(d destinationJSON) int { return d.Unacked }),
		"oldest_age": by(func(d destinationJSON) float64 { return d.OldestAgeSeconds }),
	}
}

// listDestinations takes the list query plus ?type=queue|topic.
func (s *Server) listDestinations(w http.ResponseWriter, r *http.Request) error {
	keys := destinationSorts()
	lq, err := parseList(r, keys, "name")
	if err != nil {
		return err
	}
	typ := r.URL.Query().Get("type")
	if typ != "" && typ != "queue" && typ != "topic" {
		return errBadRequest("type must be queue or topic")
	}
	all := s.b.Destinations()
	items := make([]destinationJSON, 0, len(all))
	for _, d := range all {
		if publicName(d.Name) && (typ == "" || d.Type == typ) && matches(lq.filter, d.Name) {
			items = append(items, destinationOf(d))
		}
	}
	writeJSON(w, http.StatusOK, paginate(items, lq, keys))
	return nil
}

// destName reads and checks the {name} path value: a whole destination
// name, URL-escaped (%2Fqueue%2Forders).
func destName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	var rest string
	topic := false
	switch {
	case strings.HasPrefix(name, "/queue/"):
		rest = name[len("/queue/"):]
	case strings.HasPrefix(name, "/topic/"):
		rest, topic = name[len("/topic/"):], true
	default:
		return "", errBadRequest("destination %q: names start with /queue/ or /topic/, escaped whole (%%2Fqueue%%2Forders)", name)
	}
	if rest == "" || len(name) > 255 {
		return "", errBadRequest("destination %q: a name needs 1 to 255 bytes", name)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-', c == '/':
		case topic && (c == '*' || c == '#'):
		default:
			return "", errBadRequest("destination %q: names use letters, digits and . _ - /", name)
		}
	}
	return name, nil
}

func isTopic(name string) bool { return strings.HasPrefix(name, "/topic/") }

// publicName tells the destinations clients name from the broker's own
// (the queues behind durable subscriptions, listed as subscriptions).
func publicName(name string) bool {
	return strings.HasPrefix(name, "/queue/") || isTopic(name)
}

// destinationInfo looks a destination up, with a 404 that names it.
func (s *Server) destinationInfo(name string) (broker.DestinationInfo, error) {
	d, err := s.b.Destination(name)
	if errors.Is(err, broker.ErrNotFound) {
		return d, errNotFound("no destination " + strconv.Quote(name))
	}
	return d, err
}

func (s *Server) getDestination(w http.ResponseWriter, r *http.Request) error {
	name, err := destName(r)
	if err != nil {
		return err
	}
	d, err := s.destinationInfo(name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, destinationOf(d))
	return nil
}

func (s *Server) deleteDestination(w http.ResponseWriter, r *http.Request) error {
	name, err := destName(r)
	if err != nil {
		return err
	}
	if err := s.b.DeleteDestination(name); err != nil {
		if errors.Is(err, broker.ErrNotFound) {
			return errNotFound("no destination " + strconv.Quote(name))
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// messageJSON is a message as peek and tail show it.
type messageJSON struct {
	ID          string            `json:"id"`
	Destination string            `json:"destination"`
	Headers     map[string]string `json:"headers"`
	// Body is the body when it is UTF-8 text, BodyBase64 otherwise;
	// either holds at most maxShownBody bytes, and Truncated says so.
	Body        string    `json:"body"`
	BodyBase64  string    `json:"body_base64,omitempty"`
	Size        int       `json:"size"`
	Truncated   bool      `json:"truncated,omitempty"`
	Priority    int       `json:"priority"`
	Timestamp   time.Time `json:"timestamp"`
	Redelivered bool      `json:"redelivered"`
	Persistent  bool      `json:"persistent"`
}

func messageOf(m broker.Message) messageJSON {
	j := messageJSON{
		ID: m.ID, Destination: m.Destination, Headers: make(map[string]string, len(m.Headers)),
		Size: len(m.Body), Priority: m.Priority, Timestamp: m.Timestamp.UTC(),
		Redelivered: m.Redelivered, Persistent: m.Persistent,
	}
	for _, h := range m.Headers {
		if _, dup := j.Headers[h.Key]; !dup {
			j.Headers[h.Key] = h.Value
		}
	}
	body := m.Body
	if len(body) > maxShownBody {
		// Cut at a character boundary, so a long text body stays text.
		body, j.Truncated = trimPartialRune(body[:maxShownBody]), true
	}
	if utf8.Valid(body) {
		j.Body = string(body)
	} else {
		j.BodyBase64 = base64.StdEncoding.EncodeToString(body)
	}
	return j
}

// trimPartialRune drops the bytes of a character cut off at the end.
func trimPartialRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.Valid(b); i++ {
		b = b[:len(b)-1]
	}
	return b
}

// peekMessages shows up to ?limit= (default 10) waiting messages of a
// queue without consuming them, or a topic's latest retained ones.
func (s *Server) peekMessages(w http.ResponseWriter, r *http.Request) error {
	name, err := destName(r)
	if err != nil {
		return err
	}
	limit := 10
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPageSize {
			return errBadRequest("limit must be a number from 1 to %d", maxPageSize)
		}
	}
	msgs, err := s.b.Peek(name, limit)
	if errors.Is(err, broker.ErrNotFound) {
		return errNotFound("no destination " + strconv.Quote(name))
	}
	if err != nil {
		return err
	}
	out := make([]messageJSON, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, messageOf(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"destination": name, "messages": out})
	return nil
}

// publishRequest is the body of POST .../messages.
type publishRequest struct {
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	BodyBase64 string            `json:"body_base64"`
}

// publishMessage sends a message as a client's SEND would; it answers once
// the message is routed (and stored, when persistent).
func (s *Server) publishMessage(w http.ResponseWriter, r *http.Request) error {
	name, err := destName(r)
	if err != nil {
		return err
	}
	if strings.ContainsAny(name, "*#") {
		return errBadRequest("cannot publish to a wildcard pattern")
	}
	var req publishRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPublishBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errBadRequest("request body must be JSON {\"headers\": {...}, \"body\": \"...\"}: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errBadRequest("request body must hold one JSON object")
	}
	body := []byte(req.Body)
	if req.BodyBase64 != "" {
		if req.Body != "" {
			return errBadRequest("give body or body_base64, not both")
		}
		if body, err = base64.StdEncoding.DecodeString(req.BodyBase64); err != nil {
			return errBadRequest("body_base64 is not base64: %v", err)
		}
	}
	headers := make([]stomp.Header, 0, len(req.Headers))
	for k, v := range req.Headers {
		if k == "" || strings.ContainsAny(k, ":\r\n\x00") || strings.ContainsAny(v, "\r\n\x00") {
			return errBadRequest("header %q: names need a character and no colon; neither name nor value may hold a line break or NUL", k)
		}
		headers = append(headers, stomp.Header{Key: k, Value: v})
	}
	slices.SortFunc(headers, func(a, b stomp.Header) int { return strings.Compare(a.Key, b.Key) })
	if err := s.b.Publish(name, headers, body); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"destination": name, "size": len(body)})
	return nil
}

// purgeMessages drops every waiting message of a queue.
func (s *Server) purgeMessages(w http.ResponseWriter, r *http.Request) error {
	name, err := destName(r)
	if err != nil {
		return err
	}
	if isTopic(name) {
		return errBadRequest("topics keep no messages to purge")
	}
	n, err := s.b.Purge(name)
	if errors.Is(err, broker.ErrNotFound) {
		return errNotFound("no destination " + strconv.Quote(name))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"destination": name, "purged": n})
	return nil
}

// Subscription is one subscription as GET /api/v1/subscriptions lists it.
type Subscription struct {
	// Name is a durable subscription's name; empty for a live one.
	Name string `json:"name"`
	// Destination is the topic (or topic pattern) or queue subscribed to.
	Destination string `json:"destination"`
	// Type is "topic" or "queue".
	Type    string `json:"type"`
	Durable bool   `json:"durable"`
	// Online is whether a subscriber is connected.
	Online bool `json:"online"`
	// ClientID is the client-id of a durable subscription's owner.
	ClientID string `json:"client_id,omitempty"`
	// Consumers counts the live subscribers behind this entry.
	Consumers int `json:"consumers"`
	// Backlog is how many messages wait for it.
	Backlog int `json:"backlog"`
}

// subscriptions lists the durable subscriptions, online and offline, and
// the live ones, one entry per destination with consumers (the broker
// counts consumers per destination, not per subscription).
func (s *Server) subscriptions() []Subscription {
	var out []Subscription
	for _, d := range s.b.Durables() {
		out = append(out, Subscription{
			Name: d.Name, Destination: d.Destination, Type: "topic", Durable: true,
			Online: d.Active, Consumers: boolInt(d.Active), Backlog: d.Pending,
		})
	}
	for _, d := range s.b.Destinations() {
		if d.Consumers == 0 || !publicName(d.Name) {
			continue
		}
		sub := Subscription{Destination: d.Name, Type: d.Type, Online: true, Consumers: d.Consumers}
		if d.Type == "queue" {
			sub.Backlog = d.Depth
		}
		out = append(out, sub)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func subscriptionSorts() sortKeys[Subscription] {
	return sortKeys[Subscription]{
		"destination": by(func(s Subscription) string { return s.Destination }),
		"name":        by(func(s Subscription) string { return s.Name }),
		"client_id":   by(func(s Subscription) string { return s.ClientID }),
		"consumers":   by(func(s Subscription) int { return s.Consumers }),
		"backlog":     by(func(s Subscription) int { return s.Backlog }),
	}
}

// listSubscriptions takes the list query plus ?durable=true|false.
func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	keys := subscriptionSorts()
	lq, err := parseList(r, keys, "destination")
	if err != nil {
		return err
	}
	var durable *bool
	if v := r.URL.Query().Get("durable"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errBadRequest("durable must be true or false")
		}
		durable = &b
	}
	all := s.subscriptions()
	items := make([]Subscription, 0, len(all))
	for _, sub := range all {
		if (durable == nil || sub.Durable == *durable) && matches(lq.filter, sub.Name, sub.Destination, sub.ClientID) {
			items = append(items, sub)
		}
	}
	writeJSON(w, http.StatusOK, paginate(items, lq, keys))
	return nil
}

// nodeJSON is one node as GET /api/v1/nodes lists it.
type nodeJSON struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	Self    bool      `json:"self"` // the node that answered
}

// listNodes is GET /api/v1/nodes: the nodes of the cluster, or this
// broker alone.
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	nodes := s.b.Nodes()
	out := make([]nodeJSON, len(nodes))
	for i, n := range nodes {
		out[i] = nodeJSON{Name: n.Name, Started: n.Started.UTC(), Self: n.Self}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}
