package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTopicHistoryRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.toml")
	os.WriteFile(path, []byte(`
[[topic]]
match = "/topic/chat.#"
history = 500
history_age = "24h"
history_bytes = "8MiB"
`), 0o600)
	rules, err := topicHistoryRules(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].Match != "/topic/chat.#" || rules[0].Count != 500 ||
		rules[0].Age != 24*time.Hour || rules[0].Bytes != 8<<20 {
		t.Fatalf("rules %+v", rules)
	}
	os.WriteFile(path, []byte("[[topic]]\nmatch = \"/topic/a\"\nhistory_bytes = \"lots\"\n"), 0o600)
	if _, err := topicHistoryRules(path); err == nil {
		t.Fatal("a size that is not one was accepted")
	}
}

func TestTopicHistoryFlags(t *testing.T) {
	runConfigCases(t, []configCase{
		{name: "default", check: func(c *config) bool {
			return c.Broker.TopicHistory == 0 && c.Broker.MaxHistoryBytes == 64<<20
		}},
		{name: "flags", args: []string{"--topic-history", "100", "--topic-history-max-bytes", "1000"}, check: func(c *config) bool {
			return c.Broker.TopicHistory == 100 && c.Broker.MaxHistoryBytes == 1000
		}},
		{name: "env", env: map[string]string{"BROKER_TOPIC_HISTORY": "7"}, check: func(c *config) bool {
			return c.Broker.TopicHistory == 7
		}},
	})
}
