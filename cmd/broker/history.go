package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-mq/stampede/auth"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/cluster"
)

// historyFlags registers topic history's broker-wide settings; the
// per-pattern ones come from the config file's [[topic]] tables.
func historyFlags(fs *flag.FlagSet, o *broker.Options) {
	fs.IntVar(&o.TopicHistory, "topic-history", 0, "messages every topic keeps for subscribers that ask for history or resume (x-history, x-resume-after); 0: none, unless a [[topic]] table in --config says so")
	fs.Int64Var(&o.MaxHistoryBytes, "topic-history-max-bytes", o.MaxHistoryBytes, "memory all topics' history may hold together; past it the oldest retained message anywhere is dropped")
}

// topicHistoryRules reads the [[topic]] tables of the config file. They
// are read once, at start: a SIGHUP reloads logins, not retention.
func topicHistoryRules(path string) ([]broker.TopicHistory, error) {
	if path == "" {
		return nil, nil
	}
	cfg, err := auth.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	var rules []broker.TopicHistory
	for i, t := range cfg.Topics {
		rule := broker.TopicHistory{Match: t.Match, Count: t.History}
		if t.Age != "" {
			if rule.Age, err = time.ParseDuration(t.Age); err != nil || rule.Age < 0 {
				return nil, fmt.Errorf("%s: [[topic]] %d: history_age %q is not a duration such as \"24h\"", path, i+1, t.Age)
			}
		}
		if t.Bytes != "" {
			if rule.Bytes, err = parseBytes(t.Bytes); err != nil {
				return nil, fmt.Errorf("%s: [[topic]] %d: history_bytes: %w", path, i+1, err)
			}
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

// parseBytes reads a size: a number of bytes, or one with a unit (KB, MB,
// GB in powers of 1000, KiB, MiB, GiB in powers of 1024).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as \"8MiB\"", s)
	}
	return n * mult, nil
}

// historyLimits bounds the history a cluster shares by the most generous
// retention configured: the broker holds each topic to its own.
func historyLimits(o *broker.Options) cluster.HistoryLimits {
	l := cluster.HistoryLimits{Msgs: o.TopicHistory, Bytes: o.MaxHistoryBytes}
	unaged := o.TopicHistory > 0
	for _, r := range o.TopicHistoryRules {
		if r.Count <= 0 {
			continue
		}
		l.Msgs = max(l.Msgs, r.Count)
		unaged = unaged || r.Age <= 0
		l.Age = max(l.Age, r.Age)
	}
	if unaged {
		l.Age = 0
	}
	return l
}
