package broker

import (
	"slices"
	"testing"
)

func TestRemoveSettled(t *testing.T) {
	mk := func(ids ...string) []delivery {
		ds := make([]delivery, len(ids))
		for i, id := range ids {
			ds[i] = delivery{ackID: id}
		}
		return ds
	}
	ids := func(ds []delivery) []string {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = d.ackID
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		i          int
		cumulative bool
		want       []string
	}{
		{"oldest", 0, false, []string{"b", "c", "d", "e"}},
		{"near the front", 1, false, []string{"a", "c", "d", "e"}},
		{"middle", 2, false, []string{"a", "b", "d", "e"}},
		{"newest", 4, false, []string{"a", "b", "c", "d"}},
		{"cumulative to the middle", 2, true, []string{"d", "e"}},
		{"cumulative to the end", 4, true, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := mk("a", "b", "c", "d", "e")
			full := ds[:cap(ds)]
			got := removeSettled(ds, tc.i, tc.cumulative)
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("got %v, want %v", ids(got), tc.want)
			}
			// What was removed must not stay reachable from the array.
			live := 0
			for _, d := range full {
				if d.ackID != "" {
					live++
				}
			}
			if live != len(tc.want) {
				t.Errorf("%d deliveries left in the backing array, want %d", live, len(tc.want))
			}
		})
	}
}
