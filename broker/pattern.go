package broker

import "strings"

// pattern is a topic destination parsed once: the words of its name after
// /topic/, and whether any of them is a wildcard ("*": exactly one word,
// "#": zero or more).
type pattern struct {
	dest  string   // as subscribed: /topic/...
	words []string // the name split at dots
	wild  bool
}

// parsePattern splits a topic destination that parseDestination accepted.
// Runs of "#" collapse into one, which matches the same names.
func parsePattern(dest string) pattern {
	p := pattern{dest: dest, wild: hasWildcard(dest)}
	if !p.wild {
		return p
	}
	for _, w := range topicWords(dest) {
		if w == "#" && len(p.words) > 0 && p.words[len(p.words)-1] == "#" {
			continue
		}
		p.words = append(p.words, w)
	}
	return p
}

// topicWords splits a topic destination into the words of its name.
func topicWords(dest string) []string {
	return strings.Split(strings.TrimPrefix(dest, topicPrefix), ".")
}

// withoutHashes is the name a pattern reaches when each "#" takes no
// word: /topic/a.#.b reaches /topic/a.b. A pattern without "#" is itself.
func withoutHashes(dest string) string {
	if !strings.Contains(dest, "#") {
		return dest
	}
	var kept []string
	for _, w := range topicWords(dest) {
		if w != "#" {
			kept = append(kept, w)
		}
	}
	return topicPrefix + strings.Join(kept, ".")
}

func hasWildcard(dest string) bool { return strings.ContainsAny(dest, "*#") }

// matches reports whether the topic destination name falls under p, in
// time proportional to the words of p times the words of name. The index
// answers this for many patterns at once; a cluster's broader subjects
// need it for one (shared.go), and the index is tested against it.
func (p pattern) matches(name string) bool {
	if !p.wild {
		return p.dest == name
	}
	words := topicWords(name)
	// at[i]: the pattern words so far can consume exactly words[:i].
	at := make([]bool, len(words)+1)
	at[0] = true
	for _, pw := range p.words {
		next := make([]bool, len(words)+1)
		if pw == "#" {
			// From the first reachable position on, every one is.
			i := 0
			for i < len(at) && !at[i] {
				i++
			}
			for ; i < len(next); i++ {
				next[i] = true
			}
		} else {
			for i := range words {
				next[i+1] = at[i] && (pw == "*" || pw == words[i])
			}
		}
		at = next
	}
	return at[len(words)]
}

// TopicMatcher parses a subscription pattern (wildcards as in SUBSCRIBE)
// once and returns what reports whether a topic destination name is one
// it reaches.
func TopicMatcher(pattern string) func(name string) bool { return parsePattern(pattern).matches }
