package broker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestMatchWords(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"a.b", "a.b", true},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"stocks.*.nyse", "stocks.ibm.nyse", true},
		{"stocks.*.nyse", "stocks.ibm.lse", false},
		{"logs.#", "logs", true},
		{"logs.#", "logs.a.b.c", true},
		{"logs.#", "log", false},
		{"#", "anything.at.all", true},
		{"#.end", "a.b.end", true},
		{"#.end", "end", true},
		{"#.end", "a.b", false},
		{"a.#.z", "a.z", true},
		{"a.#.z", "a.b.c.z", true},
		{"*.*", "a", false},
	}
	for _, tc := range tests {
		got := parsePattern("/topic/" + tc.pattern).matches("/topic/" + tc.name)
		if got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// indexMatch returns the ids of the live subscriptions name reaches.
func indexMatch(x *topicIndex, name string) []string {
	var m matches
	x.match(name, &m)
	var ids []string
	for _, sub := range m.live {
		ids = append(ids, sub.id)
	}
	slices.Sort(ids)
	return ids
}

func bindLive(x *topicIndex, id, dest string) *topicSub {
	sub := &topicSub{subscription: &subscription{id: id, dest: dest}, pattern: parsePattern(dest)}
	x.bind(sub.pattern, sub, nil, 0)
	return sub
}

func TestTopicIndexMatchesEachSubscriptionOnce(t *testing.T) {
	x := newTopicIndex()
	for i, p := range []string{"a.b", "a.*", "a.#", "#", "#.b", "a.#.b", "*.*", "#.#.b"} {
		bindLive(x, fmt.Sprint(i, ":", p), "/topic/"+p)
	}
	for name, want := range map[string]string{
		"a":     "2:a.#,3:#",
		"a.b":   "0:a.b,1:a.*,2:a.#,3:#,4:#.b,5:a.#.b,6:*.*,7:#.#.b",
		"a.x.b": "2:a.#,3:#,4:#.b,5:a.#.b,7:#.#.b",
		"b":     "3:#,4:#.b,7:#.#.b",
	} {
		if got := strings.Join(indexMatch(x, "/topic/"+name), ","); got != want {
			t.Errorf("%s reaches %s, want %s", name, got, want)
		}
	}
}

func TestTopicIndexUnbindPrunes(t *testing.T) {
	x := newTopicIndex()
	a := bindLive(x, "a", "/topic/x.#.y")
	b := bindLive(x, "b", "/topic/x.*")
	x.unbind(a.pattern, a, nil)
	x.unbind(b.pattern, b, nil)
	if !x.root.leaf() || x.nwild != 0 {
		t.Fatalf("trie left %+v, %d wildcard bindings", x.root, x.nwild)
	}
}

// Many "#" against a long name once took exponential time; the walk must
// stay within its states: trie nodes times positions in the name.
func TestTopicIndexWildcardsStayLinear(t *testing.T) {
	x := newTopicIndex()
	const k = 40
	bindLive(x, "attack", "/topic/"+strings.Repeat("#.a.", k)+"z")
	name := "/topic/" + strings.Repeat("a.", 60) + "b"
	var m matches
	w := trieWalk{words: topicWords(name), m: &m}
	w.visit(&x.root, 0)
	if len(m.live) != 0 {
		t.Fatal("matched")
	}
	if limit := (2*k + 2) * (len(w.words) + 1); w.steps > limit {
		t.Fatalf("walk took %d steps, more than %d", w.steps, limit)
	}
}

// The trie and the pattern's own matcher agree on random patterns and
// names over a small alphabet, where wildcards overlap the most.
func TestTopicIndexAgreesWithPatterns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "*", "#"}
	randName := func(alphabet []string) string {
		n := 1 + rng.IntN(5)
		ws := make([]string, n)
		for i := range ws {
			ws[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return "/topic/" + strings.Join(ws, ".")
	}
	x := newTopicIndex()
	var pats []pattern
	for i := range 60 {
		p := parsePattern(randName(words))
		pats = append(pats, p)
		bindLive(x, fmt.Sprint(i), p.dest)
	}
	for range 500 {
		name := randName(words[:2])
		var want []string
		for i, p := range pats {
			if p.matches(name) {
				want = append(want, fmt.Sprint(i))
			}
		}
		slices.Sort(want)
		if got := indexMatch(x, name); !slices.Equal(got, want) {
			t.Fatalf("%s: index %v, patterns %v", name, got, want)
		}
	}
}
