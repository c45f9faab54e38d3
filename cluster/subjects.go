package cluster

import "strings"

// Names map onto NATS subjects word by word: /topic/a.b travels on
// stp.t.a.b, /queue/jobs on stp.q.jobs, a temporary queue on stp.i.<name>.
// The broker allows only letters, digits, "_", "-", "/" and "." in names,
// all valid in subjects; an empty word, which NATS does not allow, becomes
// "~", which no name can hold. The name itself travels with each message,
// so nothing needs to be read back from a subject.
const (
	topicSubjects = "stp.t."
	// durableSubjects carry the copies of topic messages that durable
	// subscriptions take (durables.go).
	durableSubjects = "stp.d."
	queueSubjects   = "stp.q."
	inboxSubjects   = "stp.i."
	askSubjects     = "stp.ask."
)

// queueName reads a queue's name back from its subject.
func queueName(subj string) string {
	words := strings.Split(strings.TrimPrefix(subj, queueSubjects), ".")
	for i, w := range words {
		if w == "~" {
			words[i] = ""
		}
	}
	return "/queue/" + strings.Join(words, ".")
}

// subject maps a destination, without its /topic/ or /queue/ prefix, to a
// subject under root.
func subject(root, name string) string {
	var b strings.Builder
	b.Grow(len(root) + len(name) + 4)
	b.WriteString(root)
	for i, w := range strings.Split(name, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		if w == "" {
			w = "~"
		}
		b.WriteString(w)
	}
	return b.String()
}

// topicSubject is the subject of a topic destination (/topic/…) under
// root: topicSubjects or durableSubjects.
func topicSubject(root, dest string) string {
	return subject(root, strings.TrimPrefix(dest, "/topic/"))
}

// queueSubject is the subject of a queue destination (/queue/…).
func queueSubject(dest string) string {
	return subject(queueSubjects, strings.TrimPrefix(dest, "/queue/"))
}

// inboxSubject is the subject of a temporary queue (/queue/tmp.…).
func inboxSubject(dest string) string {
	return subject(inboxSubjects, strings.TrimPrefix(dest, "/queue/"))
}

// patternSubjects maps a topic subscription pattern to the subjects that
// carry everything it matches. "*" is NATS's "*". NATS's ">" matches one
// or more words and only at the end, so a "#" becomes ">" after the
// words before it, broader than the pattern when more words follow (the
// receiver filters those), plus the words alone when "#" is last and may
// take none: /topic/a.# is stp.t.a and stp.t.a.>.
func patternSubjects(root, pattern string) []string {
	words := strings.Split(strings.TrimPrefix(pattern, "/topic/"), ".")
	hash := -1
	for i, w := range words {
		if w == "#" {
			hash = i
			break
		}
	}
	if hash < 0 {
		return []string{subject(root, strings.Join(words, "."))}
	}
	prefix := root
	if hash > 0 {
		prefix = subject(root, strings.Join(words[:hash], ".")) + "."
	}
	subs := []string{prefix + ">"}
	onlyHashes := true
	for _, w := range words[hash:] {
		onlyHashes = onlyHashes && w == "#"
	}
	if onlyHashes && hash > 0 {
		subs = append(subs, strings.TrimSuffix(prefix, "."))
	}
	return subs
}
