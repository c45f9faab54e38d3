package cluster

import (
	"slices"
	"testing"
)

func TestPatternSubjects(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"/topic/a.b", []string{"stp.t.a.b"}},
		{"/topic/a.*", []string{"stp.t.a.*"}},
		{"/topic/a.#", []string{"stp.t.a.>", "stp.t.a"}},
		{"/topic/a.#.#", []string{"stp.t.a.>", "stp.t.a"}},
		{"/topic/#", []string{"stp.t.>"}},
		{"/topic/a.#.c", []string{"stp.t.a.>"}},
		{"/topic/*.#", []string{"stp.t.*.>", "stp.t.*"}},
		{"/topic/a..b", []string{"stp.t.a.~.b"}},
	} {
		if got := patternSubjects(topicSubjects, tc.pattern); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.pattern, got, tc.want)
		}
	}
	for _, name := range []string{"/queue/jobs.x/y", "/queue/a..b", "/queue/.x."} {
		if got := queueName(queueSubject(name)); got != name {
			t.Errorf("%s came back as %s", name, got)
		}
	}
}
