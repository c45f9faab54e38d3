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
